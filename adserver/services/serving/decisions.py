"""Deciding which ads to serve for a request, and explaining that decision.

The hot path, ``decide_ads``:

1. candidates from the in-memory index (no database), best estimated value first (``history``:
   values and their order refreshed every few seconds, not worked out per request);
2. catalog rules (``matching.static_exclusion``) until the shortlist is full;
3. one Redis round trip (``decision_script``): the live rules (budget, caps, frequency, pacing)
   against each shortlisted campaign's limits, the best passing campaign of each school up to the
   limit, and the impressions recorded;
4. tokens for the served ads.

Only the shortlist is sent to Redis, so a request costs the same with ten or ten thousand
matching campaigns. Campaigns found blocked on a budget, cap or pace are remembered for a few
seconds so the next shortlists skip them; those whose money counters must be rebuilt are handed
to the background rebuild (``rebuild``) and not served meanwhile.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from flask import current_app

from adserver import clock
from adserver.geo import Location
from adserver.ids import new_id
from adserver.services.serving import decision_script, rebuild
from adserver.services.serving.decision_script import SERVED, STATUSES, Candidate
from adserver.services.serving.entries import AdEntry, CampaignEntry, ProgramEntry
from adserver.services.serving.history import current_ranking, current_values
from adserver.services.serving.index import CampaignIndex, current_index
from adserver.services.serving.matching import LocalClock, Visit, pace_limit, static_exclusion
from adserver.services.serving.tokens import make_click_token, make_lead_token

# Schools (and campaigns) whose live counters are read per request, as a function of the limit.
SHORTLIST_EXTRA_SCHOOLS = 2
SHORTLIST_CAMPAIGNS_PER_SCHOOL = 2
# How long a campaign found blocked is left out of shortlists, by the script's status letter (budget,
# lead cap, pacing). One whose counters are being rebuilt is not: it serves again once they are.
BLOCK_MEMORY = {"b": timedelta(seconds=10), "c": timedelta(seconds=10), "p": timedelta(seconds=2)}


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


class _BlockMemory:
    """Campaigns recently found blocked, per process: a hint for the shortlist only (every served
    ad passed the live rules in Redis)."""

    def __init__(self) -> None:
        self.until: dict[str, datetime] = {}
        self.index: CampaignIndex | None = None
        self.lock = threading.Lock()

    def for_index(self, index: CampaignIndex) -> dict[str, datetime]:
        if self.index is not index:
            # A new catalog (a raised budget, a new cap) clears what was learned about blocks.
            with self.lock:
                self.until, self.index = {}, index
        return self.until


def _blocked(index: CampaignIndex) -> dict[str, datetime]:
    memory: _BlockMemory | None = current_app.extensions.get("serving_blocks")
    if memory is None:
        memory = current_app.extensions.setdefault("serving_blocks", _BlockMemory())
    return memory.for_index(index)


def _visit(request: AdRequest) -> Visit:
    return Visit(request.location, request.interest, request.degree_level, request.modality,
                 request.publisher_id, request.visitor_id)  # fmt: skip


def _candidate(index: CampaignIndex, campaign: CampaignEntry, local_clock: LocalClock, ad_number: int) -> Candidate:
    timezone = campaign.school.timezone
    return Candidate(index.specs[campaign.position], ad_number, local_clock.day(timezone),
                     pace_limit(campaign, local_clock.at(timezone)))  # fmt: skip


def _request_json(request: AdRequest, now: datetime) -> str:
    """What the request's impressions share, as the events worker stores them."""
    location = request.location
    return orjson.dumps({
        "request_id": request.request_id, "at": now.isoformat(), "publisher_id": request.publisher_id,
        "postal_code": location.postal_code, "country": location.country, "region": location.region,
        "interest": request.interest, "visitor_id": request.visitor_id, "is_bot": request.is_bot,
    }).decode()  # fmt: skip


def decide_ads(request: AdRequest) -> list[ServedAd]:
    """Choose, rank and record the ads for one request; each returned ad is one impression."""
    now = clock.now()
    index = current_index()
    ranking = current_ranking(index)
    blocked = _blocked(index)
    visit = _visit(request)
    local_clock = LocalClock(now)

    positions = index.candidate_positions(region=request.location.region, interest=request.interest,
                                          degree_level=request.degree_level, modality=request.modality)  # fmt: skip
    # Best value first: the order is worked out per refresh, so a request sorts plain integers.
    rank_of, by_rank, campaigns = ranking.rank_of, ranking.by_rank, index.campaigns
    ordered = (campaigns[by_rank[rank]] for rank in sorted([rank_of[p] for p in positions]))
    shortlist = _shortlist(ordered, blocked, now, visit, local_clock, request.limit)
    if not shortlist:
        return []
    # A campaign with several ads shows one of them at random.
    ads = [random.randrange(len(c.ads)) if len(c.ads) > 1 else 0 for c, _ in shortlist]
    decision_id = new_id("imp")
    statuses = decision_script.run(
        "serve", [_candidate(index, c, local_clock, n) for (c, _), n in zip(shortlist, ads, strict=True)],
        decision_id=decision_id, limit=request.limit, visitor_id=request.visitor_id,
        request_json=_request_json(request, now),
    )  # fmt: skip
    _learn(statuses, [c for c, _ in shortlist], blocked, now)

    click_base = f"{current_app.config['PUBLIC_BASE_URL']}/v1/click/"
    served: list[ServedAd] = []
    for (campaign, programs), ad_number, status in zip(shortlist, ads, statuses, strict=True):
        if status == SERVED:
            rank = len(served) + 1
            ad = campaign.ads[ad_number]
            impression_id = decision_script.impression_id(decision_id, rank)
            served.append(_serve(rank, campaign, ad, programs, impression_id, request.publisher_id, click_base))
    return served


def _learn(statuses: str, campaigns: list[CampaignEntry], blocked: dict[str, datetime], now: datetime) -> None:
    """Remember the campaigns found blocked, and hand those whose counters are missing to the rebuild."""
    missing = []
    for campaign, status in zip(campaigns, statuses, strict=True):
        if status in BLOCK_MEMORY:
            blocked[campaign.id] = now + BLOCK_MEMORY[status]
        elif status == "r":
            missing.append((campaign.id, campaign.school.timezone))
    if missing:
        rebuild.rebuild_in_background(missing)


def _shortlist(
    ordered: Iterable[CampaignEntry], blocked: dict[str, datetime], now: datetime, visit: Visit,
    local_clock: LocalClock, limit: int,
) -> list[tuple[CampaignEntry, tuple[ProgramEntry, ...]]]:  # fmt: skip
    """The best campaigns that pass every catalog rule and are not known to be blocked, from the best
    ``limit + SHORTLIST_EXTRA_SCHOOLS`` schools, with room to spare for the ones a live rule turns away."""
    schools_wanted = limit + SHORTLIST_EXTRA_SCHOOLS
    most = schools_wanted * SHORTLIST_CAMPAIGNS_PER_SCHOOL
    schools: set[str] = set()
    shortlist = []
    for campaign in ordered:
        until = blocked.get(campaign.id)
        if until is not None and until > now:
            continue
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
    ad: AdEntry,
    programs: tuple[ProgramEntry, ...],
    impression_id: str,
    publisher_id: str | None,
    click_base: str,
) -> ServedAd:
    school_id = campaign.school.id
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


def explain(request: AdRequest) -> list[Explanation]:
    """Every campaign in the index with the first rule that excludes it, or its score.
    Checks the live rules with the same script as serving, and records nothing."""
    now = clock.now()
    index = current_index()
    values = current_values()
    visit = _visit(request)
    local_clock = LocalClock(now)
    static: list[tuple[CampaignEntry, str | None]] = []
    for campaign in index.campaigns:
        rule, _ = static_exclusion(campaign, visit, local_clock.at(campaign.school.timezone))
        static.append((campaign, rule))
    passing = [c for c, rule in static if rule is None]
    statuses = ""
    if passing:
        statuses = decision_script.run(
            "explain", [_candidate(index, c, local_clock, 0) for c in passing], decision_id=new_id("exp"),
            limit=len(passing), visitor_id=request.visitor_id, request_json="",
        )  # fmt: skip
        _learn(statuses, passing, {}, now)
    live = dict(zip((c.id for c in passing), statuses, strict=True))
    out = []
    for campaign, rule in static:
        score = None
        if rule is None:
            rule = STATUSES.get(live[campaign.id])
            if rule is None:
                score = round(values.get(campaign.id, campaign.prior_value), 6)
        out.append(Explanation(campaign, rule, score))
    return out
