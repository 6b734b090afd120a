"""Lead request and response models: intake, the lead as a school reads it, returns, the feed query."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    Field,
    SerializerFunctionWrapHandler,
    StrictBool,
    StringConstraints,
    field_validator,
    model_serializer,
)

from adserver.schemas.catalog import ConsentText, EducationLevel
from adserver.schemas.common import SINGLE_LINE, AwareTime, Cursor, HttpUrl, Id, In, Out

NANP_COUNTRY_CODE = 1


def _email(value: str) -> str:
    """Syntax only: a lead form must not wait on DNS, and a typo'd domain is the school's to judge."""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None


def _phone(value: str) -> str:
    """A valid North American Numbering Plan number (US, Canada and the other NANP members), as E.164."""
    try:
        number = phonenumbers.parse(value, "US")
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number") from None
    if number.country_code != NANP_COUNTRY_CODE or not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid US or Canada phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


PersonName = Annotated[str, StringConstraints(min_length=1, max_length=100), SINGLE_LINE]
Email = Annotated[str, StringConstraints(min_length=3, max_length=254), SINGLE_LINE, AfterValidator(_email)]
Phone = Annotated[str, StringConstraints(min_length=7, max_length=32), SINGLE_LINE, AfterValidator(_phone)]
LeadToken = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
Year = Annotated[int, Field(ge=1900, le=2100)]
ReturnReason = Annotated[str, StringConstraints(min_length=1, max_length=64), SINGLE_LINE]


class ConsentIn(In):
    granted: StrictBool
    text: ConsentText
    page_url: HttpUrl | None = None

    @field_validator("granted")
    @classmethod
    def _must_be_granted(cls, value: bool) -> bool:
        if not value:
            raise ValueError("consent must be granted to submit a lead")
        return value


class LeadIn(In):
    """A "request info" form. Server-owned fields (status, price, school) are not accepted."""

    lead_token: LeadToken = Field(description="The `lead_token` of the ad the visitor responded to.")
    first_name: PersonName
    last_name: PersonName
    email: Email
    phone: Phone = Field(description="A US or Canada number in any common format; stored as E.164.")
    postal_code: Annotated[str, StringConstraints(min_length=3, max_length=16), SINGLE_LINE]
    education_level: EducationLevel
    graduation_year: Year | None = None
    birth_year: Year | None = None
    military: StrictBool = False
    rn_license: StrictBool = False
    program_id: Id | None = None
    consent: ConsentIn


class LeadCreatedOut(Out):
    id: str
    status: Literal["accepted"]


class AttemptOut(Out):
    number: int
    at: datetime
    http_status: int | None
    outcome: str
    latency_ms: int
    error: str | None


# What an erased lead no longer has: the person's profile, and the consent's IP, user agent and page.
PERSONAL_FIELDS = ("first_name", "last_name", "email", "phone", "postal_code", "country", "region",
                   "education_level", "graduation_year", "birth_year", "military", "rn_license")  # fmt: skip
PERSONAL_CONSENT_FIELDS = ("ip", "user_agent", "page_url")
_ERASED = "Absent once the lead is erased."


class ConsentOut(Out):
    granted: bool
    text: str
    at: datetime
    ip: str | None = Field(None, description=_ERASED)
    user_agent: str | None = Field(None, description=_ERASED)
    page_url: str | None = Field(None, description=_ERASED)


class LeadOut(Out):
    """A lead with every submitted field and its consent record (decrypted for its reader). An erased
    lead (`erased: true`) keeps its ids, status, times and consent text and time, and nothing personal."""

    id: str
    status: Literal["accepted", "delivered", "rejected", "failed", "returned", "suppressed"] = Field(
        description="`suppressed`: its person opted out before it was delivered, so it never will be."
    )
    erased: bool = Field(False, description="The person's data was erased: every personal field is absent.")
    campaign_id: str
    school_id: str
    publisher_id: str | None
    ad_id: str | None
    impression_id: str | None
    program_id: str | None
    program_name: str | None
    first_name: str | None = Field(None, description=_ERASED)
    last_name: str | None = Field(None, description=_ERASED)
    email: str | None = Field(None, description=_ERASED)
    phone: str | None = Field(None, description=_ERASED)
    postal_code: str | None = Field(None, description=_ERASED)
    country: str | None = Field(None, description=_ERASED)
    region: str | None = Field(None, description=_ERASED)
    education_level: str | None = Field(None, description=_ERASED)
    graduation_year: int | None = Field(None, description=_ERASED)
    birth_year: int | None = Field(None, description=_ERASED)
    military: bool | None = Field(None, description=_ERASED)
    rn_license: bool | None = Field(None, description=_ERASED)
    consent: ConsentOut = Field(description="An erased lead's consent keeps `granted`, `text` and `at`.")
    created_at: datetime
    delivered_at: datetime | None
    rejection_reason: str | None
    returned_at: datetime | None
    return_reason: str | None

    # No return annotation: pydantic would describe the answer by it (a bare object) instead of the fields.
    @model_serializer(mode="wrap")
    def _nothing_personal_once_erased(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        data = handler(self)
        if self.erased:
            for name in PERSONAL_FIELDS:
                data.pop(name, None)
            for name in PERSONAL_CONSENT_FIELDS:
                data["consent"].pop(name, None)
        return data


class LeadDetailOut(LeadOut):
    attempts: list[AttemptOut]


class ReturnIn(In):
    reason: ReturnReason = Field(description="Why the lead is returned, e.g. `invalid_phone`.")


class LeadFeedQuery(In):
    since: AwareTime | None = Field(None, description="Only leads created at or after this time (ISO-8601).")
    school_id: Id | None = Field(None, description="Admin only: one school's leads.")
    format: Literal["json", "csv"] | None = Field(None, description="`csv` (or `Accept: text/csv`) for CSV.")
    limit: int = Field(50, ge=1, le=500)
    cursor: Cursor | None = None
