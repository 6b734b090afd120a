"""Ad serving request and response models: ``GET /v1/ads`` and ``GET /v1/ads/explain``."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints, WithJsonSchema, model_validator

from adserver.schemas.catalog import DegreeLevel, EligibilityOut, Interest, Modality
from adserver.schemas.common import SINGLE_LINE, Id, In, Out

VisitorId = Annotated[str, StringConstraints(min_length=1, max_length=128), SINGLE_LINE]


def _ip_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address") from None


class AdsQuery(In):
    postal_code: str | None = Field(
        None, description="US ZIP (12345 or 12345-6789) or Canadian postal code (K1A 0B1); required."
    )
    zip: str | None = Field(None, description="Accepted in place of `postal_code`.")
    interest: Interest | None = Field(None, description="An interest slug from `GET /v1/interests`.")
    degree_level: DegreeLevel | None = None
    modality: Modality | None = None
    limit: int = Field(5, ge=1, le=10, description="How many ads, 1 to 10.")
    visitor_id: VisitorId | None = Field(None, description="A stable visitor id, for frequency caps.")
    user_agent: Annotated[str, StringConstraints(max_length=1000), SINGLE_LINE] | None = Field(
        None, description="Secret keys: the visitor's user agent, which bot detection uses instead of the caller's.",
    )  # fmt: skip
    user_ip: (
        Annotated[
            str,
            StringConstraints(max_length=45),
            AfterValidator(_ip_address),
            WithJsonSchema({"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}),
        ]
        | None
    ) = Field(None, description="Secret keys: the visitor's IP address (IPv4 or IPv6).")

    @model_validator(mode="before")
    @classmethod
    def _blank_means_absent(cls, data: Any) -> Any:
        # Forms send empty selects as "": treat them as not given (postal codes are checked on their own).
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v != "" or k in ("postal_code", "zip")}
        return data

    @property
    def raw_postal_code(self) -> str | None:
        return self.postal_code if self.postal_code is not None else self.zip


class ExplainQuery(AdsQuery):
    publisher_id: Id | None = Field(None, description="Explain as if this publisher asked.")


class LocationOut(Out):
    postal_code: str
    country: str
    region: str


class SchoolBriefOut(Out):
    id: str
    name: str
    logo_url: str | None


class ProgramBriefOut(Out):
    id: str
    name: str
    interest: str
    degree_level: str
    modality: str


class ServedAdOut(Out):
    rank: int
    ad_id: str
    campaign_id: str
    school: SchoolBriefOut
    headline: str
    bullets: list[str]
    tags: list[str]
    badge: str | None
    programs: list[ProgramBriefOut]
    programs_found: int
    impression_id: str
    click_url: str
    lead_token: str = Field(description="Send with `POST /v1/leads`.")
    consent_text: str = Field(description="The school's consent text, shown next to the request-info form.")
    eligibility: EligibilityOut = Field(
        description="The campaign's eligibility rules: what the request-info form must ask (`min_age` needs "
        "`birth_year`, `requires_rn_license` needs `rn_license`, `military_only` needs `military`)."
    )


class AdsResponse(Out):
    request_id: str
    location: LocationOut
    count: int
    ads: list[ServedAdOut]


class ExplainedCampaignOut(Out):
    campaign_id: str
    school_id: str
    eligible: bool
    excluded_by: str | None = Field(description="The first rule that excluded the campaign.")
    score: float | None = Field(description="Expected value per impression in cents, when eligible.")


class ExplainResponse(Out):
    location: LocationOut
    campaigns: list[ExplainedCampaignOut]
