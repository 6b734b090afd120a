"""Deciding which ads to serve for a request, and explaining that decision.

The hot path, ``decide_ads``:

1. candidates from the in-memory index (no database);
2. catalog rules (``matching.static_exclusion``);
3. a shortlist by estimated value, using this process's cache of each campaign's history;
4. one Redis round trip for the shortlist's live counters (spend, leads, frequency, history);
5. live rules (budget, caps, frequency, pacing), exact ranking, one ad per school;
6. one Redis round trip recording the impressions.

Only the shortlist's counters are read, so a request costs the same with ten or ten
thousand matching campaigns. Campaigns found blocked on a budget, cap or pace are
remembered for a few seconds so the next shortlists skip them.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter

from flask import current_app

from adserver import clock
from adserver.geo import Location
from adserver.ids import new_id
from adserver.services.serving import counters
from adserver.services.serving.counters import CounterQuery, ImpressionEvent, LiveCounters
from adserver.services.serving.entries import AdEntry, CampaignEntry, ProgramEntry
from adserver.services.serving.index import CampaignIndex, current_index
from adserver.services.serving.matching import LocalClock, Visit, live_exclusion, static_exclusion
from adserver.services.serving.ranking import expected_value, rank_candidates
from adserver.services.serving.tokens import make_click_token, make_lead_token

# Schools (and campaigns) whose live counters are read per request, as a function of the limit.
SHORTLIST_EXTRA_SCHOOLS = 3
SHORTLIST_CAMPAIGNS_PER_SCHOOL = 3
_ORDER = itemgetter(0, 1)
BLOCK_MEMORY = {"pacing": timedelta(seconds=2), "budget": timedelta(seconds=10), "lead_cap": timedelta(seconds=10)}


@dataclass(frozen=True, slots=True)
class AdRequest:
    location: Location
    interest: str | None
    degree_level: str | None
    modality: str | None
    limit: int
    visitor_id: str | None
    publisher_id: str | None
    is_bot: bool
    request_id: str


@dataclass(frozen=True, slots=True)
class ServedAd:
    rank: int
    campaign: CampaignEntry
    ad: AdEntry
    programs: tuple[ProgramEntry, ...]
    impression_id: str
    click_url: str
    lead_token: str


@dataclass(frozen=True, slots=True)
class Explanation:
    campaign: CampaignEntry
    excluded_by: str | None
    score: float | None


class _ProcessMemory:
    """Per-process hints: each campaign's last computed value, and campaigns recently found blocked.
    Both are hints for the shortlist only; every served ad passed the live rules."""

    def __init__(self) -> None:
        self.scores: dict[str, float] = {}
        self.blocked_until: dict[str, datetime] = {}
        self.index: CampaignIndex | None = None
        self.lock = threading.Lock()

    def for_index(self, index: CampaignIndex) -> _ProcessMemory:
        if self.index is not index:
            # A new catalog (a raised budget, a new cap) clears what was learned about blocks.
            with self.lock:
                self.blocked_until, self.index = {}, index
                if len(self.scores) > 200_000:
                    self.scores = {}
        return self


def _memory() -> _ProcessMemory:
    memory: _ProcessMemory | None = current_app.extensions.get("serving_memory")
    if memory is None:
        memory = current_app.extensions.setdefault("serving_memory", _ProcessMemory())
    return memory


def _visit(request: AdRequest) -> Visit:
    return Visit(request.location, request.interest, request.degree_level, request.modality,
                 request.publisher_id, request.visitor_id)  # fmt: skip


def _counter_query(campaign: CampaignEntry, local_clock: LocalClock) -> CounterQuery:
    return CounterQuery(
        campaign_id=campaign.id,
        day=local_clock.day(campaign.school.timezone),
        spend_day=campaign.daily_budget_cents is not None,
        spend_total=campaign.total_budget_cents is not None,
        leads_day=campaign.leads_per_day is not None,
        leads_month=campaign.leads_per_month is not None,
    )


def decide_ads(request: AdRequest) -> list[ServedAd]:
    """Choose, rank and record the ads for one request; each returned ad is one impression."""
    now = clock.now()
    index = current_index()
    memory = _memory().for_index(index)
    visit = _visit(request)
    local_clock = LocalClock(now)
    rng = random.Random(request.request_id)

    # Order the candidates by their last known value (the prior for campaigns this process has not
    # read yet); only the best are checked in full and have their live counters read.
    scores, blocked_until, draw = memory.scores, memory.blocked_until, rng.random
    candidates = index.candidates(region=request.location.region, interest=request.interest,
                                  degree_level=request.degree_level, modality=request.modality)  # fmt: skip
    ordered = [
        (-scores.get(c.id, c.prior_value), draw(), c)
        for c in candidates
        if c.id not in blocked_until or blocked_until[c.id] <= now
    ]
    ordered.sort(key=_ORDER)
    shortlist = _shortlist(ordered, visit, local_clock, request.limit)
    if not shortlist:
        return []
    live = counters.read_live_counters([_counter_query(c, local_clock) for c, _ in shortlist], request.visitor_id)

    eligible: list[tuple[float, CampaignEntry, tuple[ProgramEntry, ...]]] = []
    for campaign, programs in shortlist:
        found = live[campaign.id]
        score = expected_value(campaign, found.impressions, found.clicks, found.leads)
        scores[campaign.id] = score
        rule = live_exclusion(campaign, found, visit, local_clock.at(campaign.school.timezone))
        if rule is not None:
            if rule in BLOCK_MEMORY:
                blocked_until[campaign.id] = now + BLOCK_MEMORY[rule]
            continue
        eligible.append((score, campaign, programs))

    chosen = rank_candidates(eligible, rng, request.limit)
    click_base = f"{current_app.config['PUBLIC_BASE_URL']}/v1/click/"
    served = [_serve(rank, campaign, programs, request, rng, click_base)
              for rank, (_, campaign, programs) in enumerate(chosen, 1)]  # fmt: skip
    if served:
        counters.record_impressions([_impression_event(ad, request, now, local_clock) for ad in served])
    return served


def _shortlist(
    ordered: list[tuple[float, float, CampaignEntry]], visit: Visit, local_clock: LocalClock, limit: int
) -> list[tuple[CampaignEntry, tuple[ProgramEntry, ...]]]:
    """The best campaigns that pass every catalog rule, from the best ``limit + SHORTLIST_EXTRA_SCHOOLS``
    schools, with room to spare for the ones a live rule turns away."""
    schools_wanted = limit + SHORTLIST_EXTRA_SCHOOLS
    most = schools_wanted * SHORTLIST_CAMPAIGNS_PER_SCHOOL
    schools: set[str] = set()
    shortlist = []
    for _, _, campaign in ordered:
        school_id = campaign.school.id
        if school_id not in schools and len(schools) >= schools_wanted:
            continue
        rule, programs = static_exclusion(campaign, visit, local_clock.at(campaign.school.timezone))
        if rule is not None:
            continue
        schools.add(school_id)
        shortlist.append((campaign, programs))
        if len(shortlist) >= most:
            break
    return shortlist


def _serve(
    rank: int,
    campaign: CampaignEntry,
    programs: tuple[ProgramEntry, ...],
    request: AdRequest,
    rng: random.Random,
    click_base: str,
) -> ServedAd:
    ad = campaign.ads[rng.randrange(len(campaign.ads))] if len(campaign.ads) > 1 else campaign.ads[0]
    impression_id = new_id("imp")
    school_id, publisher_id = campaign.school.id, request.publisher_id
    click_token = make_click_token(impression_id, ad.id, campaign.id, school_id, publisher_id,
                                   campaign.bid_cents, campaign.pricing_model)  # fmt: skip
    return ServedAd(
        rank=rank,
        campaign=campaign,
        ad=ad,
        programs=programs,
        impression_id=impression_id,
        click_url=click_base + click_token,
        lead_token=make_lead_token(impression_id, ad.id, campaign.id, school_id, publisher_id),
    )


def _impression_event(served: ServedAd, request: AdRequest, now: datetime, local_clock: LocalClock) -> ImpressionEvent:
    campaign = served.campaign
    location = request.location
    return ImpressionEvent(
        id=served.impression_id,
        request_id=request.request_id,
        at=now.isoformat(),
        publisher_id=request.publisher_id,
        campaign_id=campaign.id,
        ad_id=served.ad.id,
        school_id=campaign.school.id,
        rank=served.rank,
        pricing_model=campaign.pricing_model,
        bid_cents=campaign.bid_cents,
        postal_code=location.postal_code,
        country=location.country,
        region=location.region,
        interest=request.interest,
        visitor_id=request.visitor_id,
        is_bot=request.is_bot,
        local_day=local_clock.day(campaign.school.timezone),
    )


def explain(request: AdRequest) -> list[Explanation]:
    """Every campaign in the index with the first rule that excludes it, or its score.
    Reads live counters like serving does, and records nothing."""
    now = clock.now()
    index = current_index()
    visit = _visit(request)
    local_clock = LocalClock(now)
    static: list[tuple[CampaignEntry, str | None]] = []
    for campaign in index.campaigns:
        rule, _ = static_exclusion(campaign, visit, local_clock.at(campaign.school.timezone))
        static.append((campaign, rule))
    passing = [c for c, rule in static if rule is None]
    live = counters.read_live_counters([_counter_query(c, local_clock) for c in passing], request.visitor_id)
    out = []
    for campaign, rule in static:
        score = None
        if rule is None:
            found = live.get(campaign.id, LiveCounters())
            rule = live_exclusion(campaign, found, visit, local_clock.at(campaign.school.timezone))
            if rule is None:
                score = round(expected_value(campaign, found.impressions, found.clicks, found.leads), 6)
        out.append(Explanation(campaign, rule, score))
    return out
