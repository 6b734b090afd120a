"""The in-memory campaign index each web process serves from.

A ``CampaignIndex`` is an immutable snapshot of every campaign with its school,
campuses, programs and ads, built from the database. Serving never queries the
database: it asks the index for candidates, which intersects precomputed
bitmasks (interest, degree level, modality, region) so the cost of a request
grows with the campaigns that could match it, not with the whole catalog.

``IndexHolder`` keeps the current snapshot of a process and swaps in a new one
when the catalog changes: a daemon thread polls the Redis ``catalog:version``
key every half second, and rebuilds on a slow timer as well in case a change
announcement was lost.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import redis
from flask import Flask, current_app
from sqlalchemy import select

from adserver import clock
from adserver.extensions import db, redis_client
from adserver.geo import distance_miles
from adserver.geo.postal import CA_REGION_CODES, US_REGION_CODES
from adserver.models import Ad, Campaign, Campus, Program, School, campaign_programs
from adserver.services.catalog.changes import CATALOG_VERSION_KEY
from adserver.services.serving import rebuild
from adserver.services.serving.decision_script import CandidateSpec
from adserver.services.serving.entries import AdEntry, CampaignEntry, EligibilityEntry, ProgramEntry, SchoolEntry
from adserver.services.serving.ranking import estimated_rate
from adserver.taxonomy import INTERESTS

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.5
# A safety net only: the version key is polled every half second.
FULL_REBUILD_INTERVAL_S = 300.0
WEEKDAY_NUMBERS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
DEGREE_LEVELS = ("certificate", "associate", "bachelor", "master", "doctorate")
MODALITIES = ("online", "campus", "hybrid")
REGION_COUNTRY = {**dict.fromkeys(US_REGION_CODES, "US"), **dict.fromkeys(CA_REGION_CODES, "CA")}


def _mask(indexes: Iterable[int], size: int) -> int:
    bits = bytearray((size + 7) // 8)
    for i in indexes:
        bits[i >> 3] |= 1 << (i & 7)
    return int.from_bytes(bits, "little")


def _members(mask: int) -> list[int]:
    # bin() scans in C; finding the '1's in the reversed digits is much faster than bit tricks on big ints.
    digits = bin(mask)[:1:-1]
    out: list[int] = []
    i = digits.find("1")
    while i >= 0:
        out.append(i)
        i = digits.find("1", i + 1)
    return out


@lru_cache(maxsize=1)
def _region_boxes() -> dict[str, tuple[float, float, float, float]]:
    """Each region's bounding box (min lat, max lat, min lon, max lon) over its postal codes."""
    from adserver.geo import _get_tables

    tables = _get_tables()
    boxes: dict[str, list[float]] = {}
    points = [(loc.region, loc.latitude, loc.longitude) for loc in tables.zips.values()]
    points += [(region, lat, lon) for region, lat, lon in tables.fsas.values()]
    for region, lat, lon in points:
        if lat is None or lon is None:
            continue
        box = boxes.setdefault(region, [lat, lat, lon, lon])
        box[0], box[1] = min(box[0], lat), max(box[1], lat)
        box[2], box[3] = min(box[2], lon), max(box[3], lon)
    return {region: (b[0], b[1], b[2], b[3]) for region, b in boxes.items()}


def _regions_within(campuses: tuple[tuple[float, float], ...], radius: float) -> set[str]:
    """Regions with some point within ``radius`` of a campus (a superset: the exact test runs per request)."""
    found: set[str] = set()
    for region, (lat0, lat1, lon0, lon1) in _region_boxes().items():
        for lat, lon in campuses:
            nearest = distance_miles(lat, lon, min(max(lat, lat0), lat1), min(max(lon, lon0), lon1))
            if nearest <= radius * 1.05 + 5:
                found.add(region)
                break
    return found


def _serving_regions(entry: CampaignEntry) -> set[str]:
    countries = entry.countries or {"US", "CA"}
    regions = {r for r, country in REGION_COUNTRY.items() if country in countries}
    if entry.regions:
        regions &= entry.regions
    regions -= entry.exclude_regions
    if entry.radius_miles is not None:
        regions &= _regions_within(entry.school.campuses, entry.radius_miles)
    return regions


def _values_served(programs: tuple[ProgramEntry, ...], attribute: str, targeted: frozenset[str],
                   every: Iterable[str]) -> set[str]:  # fmt: skip
    values = {getattr(p, attribute) for p in programs} if programs else set(every)
    return values & targeted if targeted else values


@dataclass(frozen=True)
class CampaignIndex:
    """An immutable snapshot of the catalog for serving; build it with ``build_index``."""

    campaigns: tuple[CampaignEntry, ...]
    by_id: dict[str, CampaignEntry]
    ads_by_id: dict[str, tuple[AdEntry, CampaignEntry]]
    servable_mask: int
    interest_masks: dict[str, int]
    degree_masks: dict[str, int]
    modality_masks: dict[str, int]
    region_masks: dict[str, int]
    specs: tuple[CandidateSpec, ...]  # by campaign position
    # What other layers work out once per index (the API's parts of each ad's answer), by their own keys.
    memo: dict[str, Any] = field(default_factory=dict)
    built_at: float = field(default_factory=time.monotonic)

    def candidate_positions(
        self, *, region: str, interest: str | None, degree_level: str | None, modality: str | None
    ) -> list[int]:
        """The positions of servable campaigns that can serve this region and these program choices.
        A superset: the matching rules decide."""
        mask = self.servable_mask & self.region_masks.get(region, 0)
        if interest is not None:
            mask &= self.interest_masks.get(interest, 0)
        if degree_level is not None:
            mask &= self.degree_masks.get(degree_level, 0)
        if modality is not None:
            mask &= self.modality_masks.get(modality, 0)
        return _members(mask)


def _entry(position: int, campaign: Any, school: SchoolEntry, school_programs: tuple[ProgramEntry, ...],
           program_ids: set[str], ads: tuple[AdEntry, ...]) -> CampaignEntry:  # fmt: skip
    targeting = campaign.targeting or {}
    rules = campaign.eligibility or {}
    # A campaign without programs of its own advertises every program of its school.
    programs = tuple(p for p in school_programs if p.id in program_ids) if program_ids else school_programs
    radius = targeting.get("radius_miles")
    return CampaignEntry(
        position=position,
        id=campaign.id,
        school=school,
        status=campaign.status,
        pricing_model=campaign.pricing_model,
        bid_cents=campaign.bid_cents,
        daily_budget_cents=campaign.daily_budget_cents,
        total_budget_cents=campaign.total_budget_cents,
        leads_per_day=campaign.leads_per_day,
        leads_per_month=campaign.leads_per_month,
        flight_start=campaign.flight_start,
        flight_end=campaign.flight_end,
        weekdays=frozenset(WEEKDAY_NUMBERS[d] for d in campaign.flight_days or WEEKDAY_NUMBERS),
        hour_start=campaign.flight_hour_start,
        hour_end=campaign.flight_hour_end,
        interests=frozenset(targeting.get("interests") or ()),
        degree_levels=frozenset(targeting.get("degree_levels") or ()),
        modalities=frozenset(targeting.get("modalities") or ()),
        countries=frozenset(targeting.get("countries") or ()),
        regions=frozenset(targeting.get("regions") or ()),
        exclude_regions=frozenset(targeting.get("exclude_regions") or ()),
        postal_codes=frozenset(targeting.get("postal_codes") or ()),
        radius_miles=float(radius) if radius is not None else None,
        publishers_allow=frozenset(campaign.publishers_allow or ()),
        publishers_deny=frozenset(campaign.publishers_deny or ()),
        impressions_per_day=campaign.impressions_per_day,
        eligibility=EligibilityEntry(
            min_education=rules.get("min_education"),
            min_age=rules.get("min_age"),
            graduation_year_max=rules.get("graduation_year_max"),
            requires_rn_license=bool(rules.get("requires_rn_license")),
            military_only=bool(rules.get("military_only")),
        ),
        programs=programs,
        ads=tuple(ad for ad in ads if ad.active),
        prior_value=campaign.bid_cents * estimated_rate(campaign.pricing_model, 0, 0),
    )


def _load_schools() -> dict[str, tuple[SchoolEntry, tuple[ProgramEntry, ...]]]:
    # Plain rows rather than ORM objects: the whole catalog is read at once, and rows are several times faster.
    campuses: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for c in db.session.execute(select(Campus.school_id, Campus.latitude, Campus.longitude).order_by(Campus.id)):
        if c.latitude is not None and c.longitude is not None:
            campuses[c.school_id].append((c.latitude, c.longitude))
    programs: dict[str, list[ProgramEntry]] = defaultdict(list)
    program_columns = (Program.school_id, Program.id, Program.name, Program.interest, Program.degree_level,
                       Program.modality)  # fmt: skip
    for p in db.session.execute(select(*program_columns).order_by(Program.id)):
        programs[p.school_id].append(ProgramEntry(p.id, p.name, p.interest, p.degree_level, p.modality))
    schools = {}
    school_columns = (School.id, School.name, School.logo_url, School.timezone, School.consent_text)
    for s in db.session.execute(select(*school_columns)):
        entry = SchoolEntry(s.id, s.name, s.logo_url, s.timezone, s.consent_text, tuple(campuses[s.id]))
        schools[s.id] = (entry, tuple(programs[s.id]))
    return schools


def build_index() -> CampaignIndex:
    """Read the whole catalog once and precompute the candidate bitmasks."""
    schools = _load_schools()
    program_ids: dict[str, set[str]] = defaultdict(set)
    for link in db.session.execute(select(campaign_programs.c.campaign_id, campaign_programs.c.program_id)):
        program_ids[link.campaign_id].add(link.program_id)
    ads_of: dict[str, list[AdEntry]] = defaultdict(list)
    ad_columns = (Ad.campaign_id, Ad.id, Ad.headline, Ad.bullets, Ad.tags, Ad.badge, Ad.landing_url, Ad.status)
    for a in db.session.execute(select(*ad_columns).order_by(Ad.id)):
        ads_of[a.campaign_id].append(AdEntry(a.id, a.headline, tuple(a.bullets or ()), tuple(a.tags or ()), a.badge,
                                             a.landing_url, a.status == "active"))  # fmt: skip

    campaigns: list[CampaignEntry] = []
    ads_by_id: dict[str, tuple[AdEntry, CampaignEntry]] = {}
    columns = [
        column for name, column in Campaign.__table__.columns.items() if name not in ("created_at", "updated_at")
    ]
    for campaign in db.session.execute(select(*columns).order_by(Campaign.id)):
        school_entry, school_programs = schools[campaign.school_id]
        ads = tuple(ads_of[campaign.id])
        entry = _entry(len(campaigns), campaign, school_entry, school_programs, program_ids[campaign.id], ads)
        campaigns.append(entry)
        for ad in ads:
            ads_by_id[ad.id] = (ad, entry)
    db.session.remove()

    size = len(campaigns)
    servable = [e for e in campaigns if e.servable]
    slugs = [i.slug for i in INTERESTS]
    by_interest: dict[str, list[int]] = {s: [] for s in slugs}
    by_degree: dict[str, list[int]] = {d: [] for d in DEGREE_LEVELS}
    by_modality: dict[str, list[int]] = {m: [] for m in MODALITIES}
    by_region: dict[str, list[int]] = {r: [] for r in REGION_COUNTRY}
    for e in servable:
        for slug in _values_served(e.programs, "interest", e.interests, slugs):
            by_interest.setdefault(slug, []).append(e.position)
        for level in _values_served(e.programs, "degree_level", e.degree_levels, DEGREE_LEVELS):
            by_degree[level].append(e.position)
        for modality in _values_served(e.programs, "modality", e.modalities, MODALITIES):
            by_modality[modality].append(e.position)
        for region in _serving_regions(e):
            by_region[region].append(e.position)
    school_numbers: dict[str, int] = {}
    specs = tuple(CandidateSpec.of(e, school_numbers.setdefault(e.school.id, len(school_numbers))) for e in campaigns)
    return CampaignIndex(
        campaigns=tuple(campaigns),
        by_id={e.id: e for e in campaigns},
        ads_by_id=ads_by_id,
        servable_mask=_mask((e.position for e in servable), size),
        interest_masks={k: _mask(v, size) for k, v in by_interest.items()},
        degree_masks={k: _mask(v, size) for k, v in by_degree.items()},
        modality_masks={k: _mask(v, size) for k, v in by_modality.items()},
        region_masks={k: _mask(v, size) for k, v in by_region.items()},
        specs=specs,
    )


class IndexHolder:
    """A process's current index, swapped atomically when the catalog changes."""

    def __init__(self, app: Flask) -> None:
        self._app = app
        self._index: CampaignIndex | None = None
        self._version: bytes | None = None
        self._built_at = 0.0
        self._lock = threading.Lock()
        self._watcher_pid: int | None = None
        self._stopped = threading.Event()

    def current(self) -> CampaignIndex:
        index = self._index
        if current_app.testing:
            # Tests change the catalog and serve straight away: check the version on every use.
            if index is None or self._read_version() != self._version:
                return self.refresh_now()
            return index
        if self._watcher_pid != os.getpid():
            self._start_watcher()
        return index if index is not None else self.refresh_now()

    def refresh_now(self) -> CampaignIndex:
        """Rebuild from the database now and make it current."""
        with self._lock:
            # The version is read first: a change committed during the build bumps it again.
            version = self._read_version()
            index = build_index()
            self._index, self._version, self._built_at = index, version, time.monotonic()
        _build_money(index)
        return index

    def reset(self) -> None:
        with self._lock:
            self._index, self._version = None, None

    def stop(self) -> None:
        """Stop this process's watcher thread."""
        self._stopped.set()

    def _read_version(self) -> bytes | None:
        try:
            value = redis_client.client.get(CATALOG_VERSION_KEY)
        except redis.RedisError:
            return self._version
        return value if isinstance(value, bytes) else None

    def _start_watcher(self) -> None:
        with self._lock:
            if self._watcher_pid == os.getpid():
                return
            # After a fork the parent's thread is gone: each process runs its own watcher.
            self._watcher_pid = os.getpid()
            threading.Thread(target=self._watch, name="campaign-index", daemon=True).start()

    def _watch(self) -> None:
        with self._app.app_context():
            while not self._stopped.wait(POLL_INTERVAL_S):
                try:
                    # Not built yet is not stale: the first request (or warm_up) is building it.
                    stale = self._index is not None and time.monotonic() - self._built_at > FULL_REBUILD_INTERVAL_S
                    if stale or self._read_version() != self._version:
                        self.refresh_now()
                except Exception:
                    log.exception("campaign index refresh failed; serving the previous one")


def _build_money(index: CampaignIndex) -> None:
    """Build the money hashes of servable campaigns that have none (new ones, or all of them after
    Redis lost its data: the catalog version key went with it, so the index is rebuilt) before
    requests find them missing. A failure leaves them unserved until a request hands them to the
    background rebuild."""
    try:
        missing = rebuild.unbuilt([(c.id, c.school.timezone) for c in index.campaigns if c.servable])
        rebuild.rebuild_money(missing)
    except Exception:
        log.warning("money counters not rebuilt with the index", exc_info=True)


def init_app(app: Flask) -> None:
    holder = IndexHolder(app)
    app.extensions["campaign_index"] = holder
    # The test suite empties the database and Redis between tests; it forgets the index and clock too.
    app.extensions.setdefault("test_resets", []).extend([holder.reset, lambda: clock.set_now(None)])


def warm_up(app: Flask) -> None:
    """Build this process's index and start its watcher before the first request needs them.
    A failure (the database not reachable yet) is logged, not raised: the process still starts,
    and its first request builds the index."""
    holder: IndexHolder = app.extensions["campaign_index"]
    with app.app_context():
        try:
            holder.current()
        except Exception:
            log.warning("campaign index not built at start; the first request will build it", exc_info=True)


def current_index() -> CampaignIndex:
    """The index of this process, built on first use."""
    holder: IndexHolder = current_app.extensions["campaign_index"]
    return holder.current()
