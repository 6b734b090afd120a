"""Thirty days of plausible traffic for the demo catalog, so a newcomer's dashboard has figures.

It goes through the code real traffic uses: impressions are stored by the events worker's
``store_events`` (rows and rollups in one transaction), clicks follow the click path (counted and
charged within budgets, then persisted from the click stream), and leads are submitted through
intake with the clock set to their moment, then a few are returned. Days end yesterday, so today's live counters
are left to real traffic. Seeded once: a second run finds the traffic and adds nothing.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from adserver import clock
from adserver.demo import DEMO_PUBLISHER
from adserver.errors import ApiError
from adserver.extensions import db
from adserver.ids import new_id
from adserver.models import Ad, Campaign, DailyRollup, Lead, Publisher, School
from adserver.schemas.leads import LeadIn
from adserver.services.leads import intake, returns
from adserver.services.reporting.events import IMPRESSIONS, persist_clicks, store_events
from adserver.services.serving import clicks
from adserver.services.serving.tokens import make_click_token, make_lead_token
from adserver.validation import parse_model

DEMO_POSTAL_CODES = (("85004", "US", "AZ"), ("33614", "US", "FL"), ("77002", "US", "TX"), ("60611", "US", "IL"),
                     ("18503", "US", "PA"), ("28301", "US", "NC"), ("M5V 3L9", "CA", "ON"))  # fmt: skip
FIRST_NAMES = ("Maria", "James", "Aisha", "Wei", "Carlos", "Emily", "Darnell", "Priya", "Sofia", "Liam")
LAST_NAMES = ("Garcia", "Johnson", "Okafor", "Chen", "Rivera", "Smith", "Brooks", "Patel", "Rossi", "Nguyen")
# Ad requests per hour of the day (UTC), a quiet night and a busy afternoon in North America.
HOURLY_REQUESTS = (6, 4, 3, 2, 2, 2, 3, 5, 8, 10, 12, 14, 16, 18, 20, 22, 24, 24, 22, 20, 18, 14, 10, 8)
CLICK_RATE = 0.03
BOT_SHARE = 0.04
LEAD_RATE = 0.006
RETURN_SHARE = 0.08


@dataclass(frozen=True, slots=True)
class _DemoCampaign:
    id: str
    school_id: str
    ad_id: str
    pricing_model: str
    bid_cents: int
    daily_budget_cents: int | None
    total_budget_cents: int | None
    eligibility: dict[str, Any]
    timezone: str
    consent_text: str


def _campaigns() -> list[_DemoCampaign]:
    """Each active campaign with its first active ad (plain values: intake's transactions end the session's)."""
    rows = db.session.execute(
        select(Campaign, Ad, School)
        .join(Ad, Ad.campaign_id == Campaign.id)
        .join(School, School.id == Campaign.school_id)
        .where(Campaign.status == "active", Ad.status == "active")
        .order_by(Campaign.id, Ad.id)
    ).all()
    chosen: dict[str, _DemoCampaign] = {}
    for c, ad, school in rows:
        entry = _DemoCampaign(c.id, school.id, ad.id, c.pricing_model, c.bid_cents, c.daily_budget_cents,
                              c.total_budget_cents, dict(c.eligibility or {}), school.timezone,
                              school.consent_text)  # fmt: skip
        chosen.setdefault(c.id, entry)
    return list(chosen.values())


def _profile(eligibility: dict[str, Any], rng: random.Random, number: int) -> dict[str, Any]:
    """A visitor who meets the campaign's eligibility rules."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    graduation_year = min(2012, eligibility.get("graduation_year_max") or 2012)
    return {
        "first_name": first, "last_name": last, "email": f"{first}.{last}.{number}@example.com".lower(),
        "phone": f"+1 312 555 {number % 10000:04d}", "postal_code": "60611",
        "education_level": "bachelor", "graduation_year": graduation_year, "birth_year": 1988,
        "military": bool(eligibility.get("military_only")), "rn_license": bool(eligibility.get("requires_rn_license")),
    }  # fmt: skip


def seed_demo_traffic(days: int = 30, seed: int = 2026) -> Iterator[str]:
    """Add ``days`` days of traffic for the active demo campaigns, ending yesterday; yields what it did."""
    publisher_id = db.session.scalar(select(Publisher.id).where(Publisher.name == DEMO_PUBLISHER["name"]))
    campaigns = _campaigns()
    if not campaigns or publisher_id is None:
        yield "no demo catalog: run seed-demo first"
        return
    if db.session.scalar(select(func.count()).select_from(DailyRollup)):
        yield "traffic exists: nothing added"
        return
    rng = random.Random(seed)
    today = clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
    totals = {"impressions": 0, "clicks": 0, "leads": 0, "returned": 0}
    lead_number = 0
    try:
        for day in range(days, 0, -1):
            start = today - timedelta(days=day)
            impressions, click_moments, lead_moments = [], [], []
            for hour, requests in enumerate(HOURLY_REQUESTS):
                for _ in range(requests + rng.randrange(requests // 2 + 1)):
                    at = start + timedelta(hours=hour, seconds=rng.randrange(3600))
                    postal_code, country, region = rng.choice(DEMO_POSTAL_CODES)
                    shown = rng.sample(campaigns, k=min(len(campaigns), rng.choice((2, 3, 3, 4))))
                    is_bot = rng.random() < BOT_SHARE
                    request_id = new_id("req")
                    for rank, campaign in enumerate(shown, 1):
                        impression = {
                            "id": new_id("imp"), "request_id": request_id, "at": at, "publisher_id": publisher_id,
                            "campaign_id": campaign.id, "ad_id": campaign.ad_id, "school_id": campaign.school_id,
                            "rank": rank,
                            "pricing_model": campaign.pricing_model, "bid_cents": campaign.bid_cents,
                            "postal_code": postal_code, "country": country, "region": region, "interest": None,
                            "visitor_id": None, "is_bot": is_bot,
                        }  # fmt: skip
                        impressions.append(impression)
                        if not is_bot and rng.random() < CLICK_RATE / rank:
                            click_moments.append((at + timedelta(seconds=20), impression, campaign))
                        if not is_bot and rng.random() < LEAD_RATE / rank:
                            lead_moments.append((at + timedelta(minutes=3), impression, campaign))
            totals["impressions"] += store_events(IMPRESSIONS, impressions)
            for at, impression, campaign in click_moments:
                _click(impression, campaign, at)
            totals["clicks"] += persist_clicks()
            for at, impression, campaign in lead_moments:
                lead_number += 1
                lead_id = _submit_lead(at, impression, campaign, publisher_id, rng, lead_number)
                if lead_id is not None:
                    totals["leads"] += 1
                    if rng.random() < RETURN_SHARE:
                        clock.set_now(at + timedelta(days=1))
                        returns.return_lead(db.session.get(Lead, lead_id), "not_interested")  # type: ignore[arg-type]
                        totals["returned"] += 1
    finally:
        clock.set_now(None)
        intake.flush_accepted_leads()
    yield (f"traffic added: {days} days, {totals['impressions']:,} impressions, {totals['clicks']:,} clicks, "
           f"{totals['leads']:,} leads ({totals['returned']} returned)")  # fmt: skip


def _click(impression: dict[str, Any], campaign: _DemoCampaign, at: datetime) -> None:
    """A person following the ad's link at ``at``: counted and charged by the click path (nothing
    once a budget is spent), published to the click stream."""
    clock.set_now(at)
    token = make_click_token(impression["id"], impression["ad_id"], campaign.id, campaign.school_id,
                             impression["publisher_id"], campaign.bid_cents, campaign.pricing_model)  # fmt: skip
    clicks.record_click(token, is_bot=False, is_prefetch=False)


def _submit_lead(at: datetime, impression: dict[str, Any], campaign: _DemoCampaign, publisher_id: str,
                 rng: random.Random, number: int) -> str | None:  # fmt: skip
    """Submit through intake at ``at``; a lead over a cap or budget is refused, as it would be."""
    clock.set_now(at)
    token = make_lead_token(impression["id"], impression["ad_id"], campaign.id, campaign.school_id, publisher_id)
    body = {"lead_token": token, **_profile(campaign.eligibility, rng, number),
            "consent": {"granted": True, "text": campaign.consent_text,
                        "page_url": "https://careerguides.example/medical-office-manager"}}  # fmt: skip
    submitter = intake.Submitter(publisher_id=publisher_id, ip="203.0.113.7", user_agent="Mozilla/5.0 (demo)")
    try:
        return intake.submit_lead(parse_model(LeadIn, body), submitter)
    except ApiError:
        return None
