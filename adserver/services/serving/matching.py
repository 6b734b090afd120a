"""Campaign rules: which campaigns may serve a visit, and the first rule that stops one.

Rules run in the order ``RULES`` lists them; the first failure names the
exclusion (``GET /v1/ads/explain`` shows it). Rules that need only the catalog
and the request run in ``static_exclusion``; those that need live counters
(budgets, caps, frequency, pacing) in ``live_exclusion``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from adserver.geo import Location, distance_miles
from adserver.services.serving import pacing
from adserver.services.serving.counters import LiveCounters, zone
from adserver.services.serving.entries import CampaignEntry, ProgramEntry

RULES = (
    "status", "flight", "schedule", "interest", "degree_level", "modality", "country", "region",
    "postal_code", "radius", "publisher", "budget", "lead_cap", "frequency_cap", "pacing",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Visit:
    """What the rules know about an ad request."""

    location: Location
    interest: str | None = None
    degree_level: str | None = None
    modality: str | None = None
    publisher_id: str | None = None
    visitor_id: str | None = None


class LocalClock:
    """``now`` in each school's time zone, converted once per zone per request."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._local: dict[str, datetime] = {}
        self._days: dict[str, str] = {}

    def at(self, timezone: str) -> datetime:
        local = self._local.get(timezone)
        if local is None:
            local = self._local[timezone] = self.now.astimezone(zone(timezone))
        return local

    def day(self, timezone: str) -> str:
        """The school's calendar day, ``YYYYMMDD`` (the day of its counters)."""
        day = self._days.get(timezone)
        if day is None:
            day = self._days[timezone] = self.at(timezone).strftime("%Y%m%d")
        return day


def _narrow(programs: tuple[ProgramEntry, ...], attribute: str, wanted: str) -> tuple[ProgramEntry, ...]:
    return tuple(p for p in programs if getattr(p, attribute) == wanted)


def static_exclusion(
    campaign: CampaignEntry, visit: Visit, local: datetime
) -> tuple[str | None, tuple[ProgramEntry, ...]]:
    """The first catalog rule that excludes the campaign (or None), and the programs that match the visit."""
    c = campaign
    if not c.servable:
        return "status", ()
    today = local.date()
    if (c.flight_start is not None and today < c.flight_start) or (c.flight_end is not None and today > c.flight_end):
        return "flight", ()
    if local.weekday() not in c.weekdays or not c.hour_start <= local.hour < c.hour_end:
        return "schedule", ()
    programs = c.programs
    # A campaign without programs advertises the school as a whole; with programs, one must fit the visit.
    for rule, targeted, wanted in (
        ("interest", c.interests, visit.interest),
        ("degree_level", c.degree_levels, visit.degree_level),
        ("modality", c.modalities, visit.modality),
    ):
        if wanted is None:
            continue
        if targeted and wanted not in targeted:
            return rule, ()
        if c.programs:
            programs = _narrow(programs, rule, wanted)
            if not programs:
                return rule, ()
    location = visit.location
    if c.countries and location.country not in c.countries:
        return "country", ()
    if (c.regions and location.region not in c.regions) or location.region in c.exclude_regions:
        return "region", ()
    if c.postal_codes and location.postal_code not in c.postal_codes:
        return "postal_code", ()
    if c.radius_miles is not None and not _within_radius(c, location):
        return "radius", ()
    if (c.publishers_allow and visit.publisher_id not in c.publishers_allow) or (
        visit.publisher_id is not None and visit.publisher_id in c.publishers_deny
    ):
        return "publisher", ()
    return None, programs


def _within_radius(campaign: CampaignEntry, location: Location) -> bool:
    if location.latitude is None or location.longitude is None or campaign.radius_miles is None:
        return False
    radius = campaign.radius_miles
    return any(
        distance_miles(lat, lon, location.latitude, location.longitude) <= radius
        for lat, lon in campaign.school.campuses
    )


def live_exclusion(campaign: CampaignEntry, counters: LiveCounters, visit: Visit, local: datetime) -> str | None:
    """The first rule on live counters that excludes the campaign, or None."""
    c = campaign
    # A CPC campaign stops once spend reaches a budget (a click may pass it by at most its price);
    # a CPL campaign stops when one more lead would pass it, since a lead is charged when accepted.
    next_charge = c.bid_cents if c.pricing_model == "cpl" else 0
    if _out_of_budget(counters.spend_day, c.daily_budget_cents, next_charge) or _out_of_budget(
        counters.spend_total, c.total_budget_cents, next_charge
    ):
        return "budget"
    if (c.leads_per_day is not None and counters.leads_day >= c.leads_per_day) or (
        c.leads_per_month is not None and counters.leads_month >= c.leads_per_month
    ):
        return "lead_cap"
    if c.impressions_per_day is not None and visit.visitor_id and counters.frequency >= c.impressions_per_day:
        return "frequency_cap"
    if pacing.ahead_of_pace(
        daily_budget_cents=c.daily_budget_cents, bid_cents=c.bid_cents, spent_today_cents=counters.spend_day,
        hour_start=c.hour_start, hour_end=c.hour_end, local=local,
    ):  # fmt: skip
        return "pacing"
    return None


def _out_of_budget(spent: int, budget: int | None, next_charge: int) -> bool:
    if budget is None:
        return False
    return spent + next_charge > budget if next_charge else spent >= budget
