"""The records of a catalog snapshot: each campaign as serving sees it, with its school, programs
and ads. The index is built of them, and matching and ranking read them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class SchoolEntry:
    id: str
    name: str
    logo_url: str | None
    timezone: str
    consent_text: str
    campuses: tuple[tuple[float, float], ...]  # (latitude, longitude) of campuses with coordinates


@dataclass(frozen=True, slots=True)
class ProgramEntry:
    id: str
    name: str
    interest: str
    degree_level: str
    modality: str


@dataclass(frozen=True, slots=True)
class AdEntry:
    id: str
    headline: str
    bullets: tuple[str, ...]
    tags: tuple[str, ...]
    badge: str | None
    landing_url: str
    active: bool


@dataclass(frozen=True, slots=True)
class EligibilityEntry:
    """What a lead's profile must meet; served with each ad so the request-info form asks for it."""

    min_education: str | None
    min_age: int | None
    graduation_year_max: int | None
    requires_rn_license: bool
    military_only: bool


@dataclass(frozen=True, slots=True)
class CampaignEntry:
    position: int
    id: str
    school: SchoolEntry
    status: str
    pricing_model: str
    bid_cents: int
    daily_budget_cents: int | None
    total_budget_cents: int | None
    leads_per_day: int | None
    leads_per_month: int | None
    flight_start: date | None
    flight_end: date | None
    weekdays: frozenset[int]
    hour_start: int
    hour_end: int
    interests: frozenset[str]
    degree_levels: frozenset[str]
    modalities: frozenset[str]
    countries: frozenset[str]
    regions: frozenset[str]
    exclude_regions: frozenset[str]
    postal_codes: frozenset[str]
    radius_miles: float | None
    publishers_allow: frozenset[str]
    publishers_deny: frozenset[str]
    impressions_per_day: int | None
    eligibility: EligibilityEntry
    programs: tuple[ProgramEntry, ...]
    ads: tuple[AdEntry, ...]  # active ads only
    prior_value: float  # expected cents per impression before any history

    @property
    def servable(self) -> bool:
        return self.status == "active" and bool(self.ads)
