"""Catalog request and response models: schools, campaigns, ads, publishers, keys."""

from __future__ import annotations

import ipaddress
from datetime import date, datetime
from typing import Annotated, Literal
from urllib.parse import urlparse
from zoneinfo import available_timezones

from flask import current_app
from pydantic import AfterValidator, Field, StringConstraints, WithJsonSchema, field_validator, model_validator

from adserver.geo import COUNTRIES, REGION_CODES, InvalidPostalCode, resolve_postal_code
from adserver.schemas.common import MULTI_LINE, NOT_PADDED, SINGLE_LINE, Cursor, HttpUrl, Id, In, Name, Out
from adserver.taxonomy import INTEREST_BY_SLUG

DegreeLevel = Literal["certificate", "associate", "bachelor", "master", "doctorate"]
Modality = Literal["online", "campus", "hybrid"]
EducationLevel = Literal["none", "high_school", "associate", "bachelor", "master", "doctorate"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIMEZONES = frozenset(available_timezones())
LEAD_FIELDS = frozenset(
    {
        "id", "first_name", "last_name", "email", "phone", "postal_code", "country", "region",
        "education_level", "graduation_year", "birth_year", "military", "rn_license", "program_id",
        "program_name", "campaign_id", "school_id", "created_at", "consent_text", "consent_at",
        "consent_ip", "consent_user_agent", "consent_page_url",
    }
)  # fmt: skip


def _interest(slug: str) -> str:
    if slug not in INTEREST_BY_SLUG:
        raise ValueError("unknown interest; see GET /v1/interests")
    return slug


def _timezone(name: str) -> str:
    if name not in _TIMEZONES:
        raise ValueError("unknown IANA time zone, e.g. America/Phoenix")
    return name


def _region(code: str) -> str:
    code = code.upper()
    if code not in REGION_CODES:
        raise ValueError("unknown US state or Canadian province code")
    return code


def _country(code: str) -> str:
    code = code.upper()
    if code not in COUNTRIES:
        raise ValueError("must be US or CA")
    return code


def _postal_code(raw: str) -> str:
    try:
        return resolve_postal_code(raw).postal_code
    except InvalidPostalCode:
        raise ValueError("not a valid US ZIP or Canadian postal code") from None


def _delivery_url(value: str) -> str:
    """Delivery URLs must be http(s) and, unless allow-listed, not point at private or loopback hosts."""
    parsed = urlparse(value)
    host = (parsed.hostname or "").lower()
    if parsed.scheme not in ("http", "https") or not host:
        raise ValueError("must be an http or https URL")
    if host in current_app.config["DELIVERY_URL_ALLOWLIST"]:
        return value
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
            raise ValueError("must not point at a local host") from None
        return value
    if not address.is_global:
        raise ValueError("must not point at a private, loopback or reserved address")
    return value


Interest = Annotated[
    str, NOT_PADDED, AfterValidator(_interest), WithJsonSchema({"type": "string", "enum": sorted(INTEREST_BY_SLUG)})
]
RegionCode = Annotated[str, StringConstraints(min_length=2, max_length=2), AfterValidator(_region)]
CountryCode = Annotated[str, StringConstraints(min_length=2, max_length=2), AfterValidator(_country)]
PostalCode = Annotated[str, StringConstraints(max_length=16), AfterValidator(_postal_code)]
Timezone = Annotated[str, NOT_PADDED, StringConstraints(max_length=64), AfterValidator(_timezone),
                     WithJsonSchema({"type": "string", "enum": sorted(_TIMEZONES)})]  # fmt: skip
Hostname = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.-]+(:\d+)?$")]
Bullet = Annotated[str, StringConstraints(min_length=1, max_length=300), SINGLE_LINE]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=60), SINGLE_LINE]
Badge = Annotated[str, StringConstraints(min_length=1, max_length=80), SINGLE_LINE]
FieldName = Annotated[str, StringConstraints(min_length=1, max_length=100), SINGLE_LINE]
ConsentText = Annotated[str, StringConstraints(min_length=1, max_length=2000), MULTI_LINE]


# ---- schools -------------------------------------------------------------


class CampusIn(In):
    name: Name
    postal_code: Annotated[str, StringConstraints(min_length=1, max_length=16), SINGLE_LINE]
    country: CountryCode | None = None


class ProgramIn(In):
    id: Id | None = Field(None, description="On PATCH: the program to update; omit to add a program.")
    name: Name
    interest: Interest
    degree_level: DegreeLevel
    modality: Modality


class DeliveryIn(In):
    method: Literal["http_post", "pull"] = "pull"
    url: Annotated[str, StringConstraints(max_length=2048), AfterValidator(_delivery_url)] | None = None
    format: Literal["json", "form"] = "json"
    field_map: dict[FieldName, str] = Field(default_factory=dict, max_length=50)
    max_attempts: int = Field(8, ge=1, le=20)
    timeout_s: int = Field(10, ge=1, le=60)

    @field_validator("field_map")
    @classmethod
    def _known_lead_fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value.values()) - LEAD_FIELDS)
        if unknown:
            raise ValueError(f"unknown lead fields: {', '.join(unknown)}")
        return value

    @model_validator(mode="after")
    def _url_for_http_post(self) -> DeliveryIn:
        if self.method == "http_post" and not self.url:
            raise ValueError("url is required when method is http_post")
        return self


class SchoolIn(In):
    name: Name
    website: HttpUrl | None = None
    logo_url: HttpUrl | None = None
    timezone: Timezone
    consent_text: ConsentText | None = Field(
        None, description="The school's own consent text shown with its ads; a standard text is used when omitted."
    )
    campuses: list[CampusIn] = Field(default_factory=list, max_length=100)
    programs: list[ProgramIn] = Field(default_factory=list, max_length=500)
    delivery: DeliveryIn = Field(default_factory=DeliveryIn)


class CampusOut(Out):
    id: str
    name: str
    postal_code: str
    country: str
    region: str
    latitude: float | None
    longitude: float | None


class ProgramOut(Out):
    id: str
    name: str
    interest: str
    degree_level: str
    modality: str


class DeliveryOut(Out):
    method: str
    url: str | None
    format: str
    field_map: dict[str, str]
    max_attempts: int
    timeout_s: int
    secret: str | None = Field(None, description="The whsec_ signing secret; present only when the school is created.")


class SchoolOut(Out):
    id: str
    name: str
    website: str | None
    logo_url: str | None
    timezone: str
    consent_text: str
    campuses: list[CampusOut]
    programs: list[ProgramOut]
    delivery: DeliveryOut
    created_at: datetime
    updated_at: datetime


class SchoolListQuery(In):
    limit: int = Field(50, ge=1, le=500)
    cursor: Cursor | None = None


class KeyOut(Out):
    id: str
    secret_key: str


# ---- campaigns -----------------------------------------------------------


class PricingIn(In):
    model: Literal["cpl", "cpc"]
    bid_cents: int = Field(ge=1, le=1_000_000)


class BudgetIn(In):
    daily_cents: int | None = Field(None, ge=1, le=1_000_000_000)
    # At most what the database's integer column holds ($21 million).
    total_cents: int | None = Field(None, ge=1, le=2_147_483_647)


class CapsIn(In):
    leads_per_day: int | None = Field(None, ge=1, le=1_000_000)
    leads_per_month: int | None = Field(None, ge=1, le=10_000_000)


class FlightIn(In):
    start: date | None = None
    end: date | None = None
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS), min_length=1, max_length=7)
    hours: tuple[int, int] = Field((0, 24), description="[from, to): [8, 20] serves 08:00 to 19:59.")

    @model_validator(mode="after")
    def _consistent(self) -> FlightIn:
        if self.start and self.end and self.end < self.start:
            raise ValueError("end must not be before start")
        start_hour, end_hour = self.hours
        if not (0 <= start_hour < end_hour <= 24):
            raise ValueError("hours must be [from, to] with 0 <= from < to <= 24")
        if len(set(self.days)) != len(self.days):
            raise ValueError("days must not repeat")
        return self


class TargetingIn(In):
    interests: list[Interest] = Field(default_factory=list, max_length=100)
    degree_levels: list[DegreeLevel] = Field(default_factory=list, max_length=5)
    modalities: list[Modality] = Field(default_factory=list, max_length=3)
    countries: list[CountryCode] = Field(default_factory=list, max_length=2)
    regions: list[RegionCode] = Field(default_factory=list, max_length=80)
    exclude_regions: list[RegionCode] = Field(default_factory=list, max_length=80)
    postal_codes: list[PostalCode] = Field(default_factory=list, max_length=5000)
    radius_miles: float | None = Field(None, gt=0, le=3000)


class EligibilityIn(In):
    min_education: EducationLevel | None = None
    min_age: int | None = Field(None, ge=0, le=120)
    graduation_year_max: int | None = Field(None, ge=1900, le=2100)
    requires_rn_license: bool = False
    military_only: bool = False


class PublisherListsIn(In):
    allow: list[Id] = Field(default_factory=list, max_length=1000)
    deny: list[Id] = Field(default_factory=list, max_length=1000)


class FrequencyCapIn(In):
    impressions_per_day: int | None = Field(None, ge=1, le=1000)


CampaignStatus = Literal["draft", "active", "paused", "ended"]


class CampaignIn(In):
    school_id: Id
    name: Name
    status: CampaignStatus = "draft"
    pricing: PricingIn
    budget: BudgetIn = Field(default_factory=BudgetIn)
    caps: CapsIn = Field(default_factory=CapsIn)
    flight: FlightIn = Field(default_factory=FlightIn)
    targeting: TargetingIn = Field(default_factory=TargetingIn)
    eligibility: EligibilityIn = Field(default_factory=EligibilityIn)
    publishers: PublisherListsIn = Field(default_factory=PublisherListsIn)
    frequency_cap: FrequencyCapIn = Field(default_factory=FrequencyCapIn)
    program_ids: list[Id] = Field(default_factory=list, max_length=500)


class PricingOut(Out):
    model: str
    bid_cents: int


class BudgetOut(Out):
    daily_cents: int | None
    total_cents: int | None


class CapsOut(Out):
    leads_per_day: int | None
    leads_per_month: int | None


class FlightOut(Out):
    start: date | None
    end: date | None
    days: list[str]
    hours: tuple[int, int]


class TargetingOut(Out):
    interests: list[str]
    degree_levels: list[str]
    modalities: list[str]
    countries: list[str]
    regions: list[str]
    exclude_regions: list[str]
    postal_codes: list[str]
    radius_miles: float | None


class EligibilityOut(Out):
    min_education: str | None
    min_age: int | None
    graduation_year_max: int | None
    requires_rn_license: bool
    military_only: bool


class PublisherListsOut(Out):
    allow: list[str]
    deny: list[str]


class FrequencyCapOut(Out):
    impressions_per_day: int | None


class CampaignOut(Out):
    id: str
    school_id: str
    name: str
    status: str
    pricing: PricingOut
    budget: BudgetOut
    caps: CapsOut
    flight: FlightOut
    targeting: TargetingOut
    eligibility: EligibilityOut
    publishers: PublisherListsOut
    frequency_cap: FrequencyCapOut
    program_ids: list[str]
    created_at: datetime
    updated_at: datetime


class CampaignListQuery(In):
    school_id: Id | None = None
    status: CampaignStatus | None = None
    limit: int = Field(50, ge=1, le=500)
    cursor: Cursor | None = None


# ---- ads -----------------------------------------------------------------


class AdIn(In):
    headline: Name
    bullets: list[Bullet] = Field(default_factory=list, max_length=10)
    tags: list[Tag] = Field(default_factory=list, max_length=10)
    badge: Badge | None = None
    landing_url: HttpUrl
    status: Literal["active", "paused"] = "active"


class AdOut(Out):
    id: str
    campaign_id: str
    headline: str
    bullets: list[str]
    tags: list[str]
    badge: str | None
    landing_url: str
    status: str
    created_at: datetime
    updated_at: datetime


# ---- publishers ----------------------------------------------------------


class PublisherIn(In):
    name: Name
    domains: list[Hostname] = Field(default_factory=list, max_length=100)

    @field_validator("domains")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return sorted({domain.lower() for domain in value})


class PublisherOut(Out):
    id: str
    name: str
    domains: list[str]
    created_at: datetime
    updated_at: datetime


class PublisherCreatedOut(PublisherOut):
    publishable_key: str
    secret_key: str


class InterestOut(Out):
    slug: str
    name: str
    cip_code: str


class InterestList(Out):
    data: list[InterestOut]
