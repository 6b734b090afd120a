"""Campaign rules: which campaigns may serve a visit, and the first rule that stops one.

Rules run in the order ``RULES`` lists them; the first failure names the
exclusion (``GET /v1/ads/explain`` shows it). Rules that need only the catalog
and the request run in ``static_exclusion``; those that need live counters
(budgets, caps, frequency, pacing) are limits worked out here (``CampaignLimits``,
``pace_limit``) and compared with the counters in Redis by ``decision_script``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from adserver.geo import Location, distance_miles
from adserver.services.serving import pacing
from adserver.services.serving.counters import NO_LIMIT, zone
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


@dataclass(frozen=True, slots=True)
class CampaignLimits:
    """The live rules of a campaign as the most each count may be for it to serve (``NO_LIMIT``
    where it has no such rule); ``decision_script`` compares the counts with them, in ``RULES`` order.

    * budget: the spend of the day and in total, so that one more charge (a click or a lead at the
      bid) stays within the budget; a click is charged only within the same limits;
    * lead_cap: the leads of the day and of the month, one fewer than the cap;
    * frequency_cap: impressions served to the visitor today, one fewer than the cap;
    * pacing (``pace_limit``, worked out per request): the spend of the day, as far as the share
      of the serving window that has passed allows.
    """

    spend_day: int
    spend_total: int
    leads_day: int
    leads_month: int
    frequency: int

    @classmethod
    def of(cls, c: CampaignEntry) -> CampaignLimits:
        return cls(_most(c.daily_budget_cents, c.bid_cents), _most(c.total_budget_cents, c.bid_cents),
                   _most(c.leads_per_day, 1), _most(c.leads_per_month, 1), _most(c.impressions_per_day, 1))  # fmt: skip

    @classmethod
    def of_budgets(cls, daily_cents: int | None, total_cents: int | None, charge_cents: int) -> CampaignLimits:
        """The budget limits alone, for one more charge of ``charge_cents``."""
        return cls(_most(daily_cents, charge_cents), _most(total_cents, charge_cents), NO_LIMIT, NO_LIMIT, NO_LIMIT)


def _most(limit: int | None, step: int) -> int:
    """The most a count may be for one more ``step`` to stay within ``limit``."""
    return NO_LIMIT if limit is None else limit - step


def pace_limit(campaign: CampaignEntry, local: datetime) -> int:
    """The most the campaign may have spent today and still serve now (``NO_LIMIT`` without a daily budget)."""
    c = campaign
    if not c.daily_budget_cents:
        return NO_LIMIT
    return pacing.spend_allowed(daily_budget_cents=c.daily_budget_cents, bid_cents=c.bid_cents,
                                hour_start=c.hour_start, hour_end=c.hour_end, local=local)  # fmt: skip
