"""Ranking: expected value per impression, one ad per school, fair ties.

A campaign's value is its bid times its estimated rate of the paid event
(clicks for CPC, leads for CPL). The rate is the campaign's own history
smoothed toward a prior, ``(events + w * prior) / (impressions + w)``: a new
campaign starts at the prior and its own results take over as impressions
accumulate, so it gets a fair chance without a lucky first click deciding it.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import TypeVar

from adserver.services.serving.entries import CampaignEntry

PRIOR_CLICK_RATE = 0.02
PRIOR_LEAD_RATE = 0.004
# The prior counts as this many impressions of evidence.
PRIOR_WEIGHT = 200.0

T = TypeVar("T")


def estimated_rate(pricing_model: str, impressions: int, events: int) -> float:
    prior = PRIOR_CLICK_RATE if pricing_model == "cpc" else PRIOR_LEAD_RATE
    return (events + PRIOR_WEIGHT * prior) / (max(impressions, 0) + PRIOR_WEIGHT)


def expected_value(campaign: CampaignEntry, impressions: int, clicks: int, leads: int) -> float:
    """Expected cents per impression."""
    events = clicks if campaign.pricing_model == "cpc" else leads
    return campaign.bid_cents * estimated_rate(campaign.pricing_model, impressions, events)


def rank_candidates(
    scored: Iterable[tuple[float, CampaignEntry, T]], rng: random.Random, limit: int
) -> list[tuple[float, CampaignEntry, T]]:
    """Best first, at most one per school, at most ``limit``. Equal scores are ordered at random."""
    ordered = sorted(scored, key=lambda item: (-item[0], rng.random()))
    chosen: list[tuple[float, CampaignEntry, T]] = []
    schools: set[str] = set()
    for item in ordered:
        school_id = item[1].school.id
        if school_id in schools:
            continue
        schools.add(school_id)
        chosen.append(item)
        if len(chosen) == limit:
            break
    return chosen
