"""Clicks: verify the token, count the click once, take CPC spend, and say where to send the visitor.

A click is counted (and, for CPC, charged, within the campaign's budgets) at
most once per impression, and only when a person made it: declared bots and browser prefetches are sent on
but flagged and not counted, and leave the impression's click available for
the person who follows. An expired token (older than 24 hours) still
redirects but is not counted. Every click, counted or not, goes to the click
stream for the events worker, in the same script call that counts it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy.exc import SQLAlchemyError

from adserver import clock
from adserver.errors import ApiError
from adserver.extensions import db
from adserver.ids import new_id
from adserver.models import Ad
from adserver.services.serving import counters, rebuild
from adserver.services.serving.counters import ClickCharge
from adserver.services.serving.index import current_index
from adserver.services.serving.matching import CampaignLimits
from adserver.services.serving.tokens import ClickTokenClaims, InvalidToken, parse_click_token

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClickOutcome:
    location: str
    counted: bool
    charged_cents: int


def with_utm(landing_url: str, publisher_id: str | None) -> str:
    """The landing URL with ``utm_source`` (the publisher) and ``utm_medium=referral`` set."""
    parts = urlsplit(landing_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("utm_source", "utm_medium")]
    query += [("utm_source", publisher_id or "adserver"), ("utm_medium", "referral")]
    return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass(frozen=True, slots=True)
class _Target:
    """What a click needs of its ad and campaign: where to send the visitor, the school's time zone,
    and the budgets."""

    landing_url: str
    timezone: str
    daily_budget_cents: int | None
    total_budget_cents: int | None


def _target(claims: ClickTokenClaims) -> _Target:
    """From the index, or the database for an ad it no longer holds."""
    found = current_index().ads_by_id.get(claims.ad_id)
    if found is not None:
        ad, c = found
        return _Target(ad.landing_url, c.school.timezone, c.daily_budget_cents, c.total_budget_cents)
    row = db.session.get(Ad, claims.ad_id)
    if row is None or row.campaign_id != claims.campaign_id:
        raise ApiError(404, "not_found", "No such ad.")
    campaign = row.campaign
    return _Target(row.landing_url, campaign.school.timezone, campaign.daily_budget_cents,
                   campaign.total_budget_cents)  # fmt: skip


def _charge(claims: ClickTokenClaims, target: _Target, countable: bool, event: dict[str, object]) -> ClickCharge:
    """Count and charge the click in one script call; when the campaign's money counters are
    missing (Redis lost its data), rebuild them from the database first. A click that still cannot
    be charged safely is not counted: a budget is never passed."""
    # The price is the bid the ad was served with.
    price = claims.bid_cents if claims.pricing_model == "cpc" else 0
    limits = CampaignLimits.of_budgets(target.daily_budget_cents, target.total_budget_cents, price)
    day = counters.local_day(target.timezone, clock.now())
    for attempt in range(2):
        charge = counters.record_click(
            click_id=str(event["id"]), impression_id=claims.impression_id, campaign_id=claims.campaign_id,
            day=day, price_cents=price, day_limit=limits.spend_day, total_limit=limits.spend_total,
            countable=countable, event=event,
        )  # fmt: skip
        if not charge.needs_rebuild:
            return charge
        if attempt == 0:
            try:
                rebuild.rebuild_money([(claims.campaign_id, target.timezone)])
            except SQLAlchemyError:
                log.warning("money counters not rebuilt for a click", extra={"campaign_id": claims.campaign_id})
    # Not counted, and published as such, so the impression's click is still there to count.
    return counters.record_click(
        click_id=str(event["id"]), impression_id=claims.impression_id, campaign_id=claims.campaign_id, day=day,
        price_cents=0, day_limit=0, total_limit=0, countable=False, event=event,
    )  # fmt: skip


def record_click(token: str, *, is_bot: bool, is_prefetch: bool) -> ClickOutcome:
    """Verify a click token and count the click; 404 for a tampered or foreign token."""
    try:
        claims = parse_click_token(token)
    except InvalidToken:
        raise ApiError(404, "not_found", "No such link.") from None
    target = _target(claims)
    event: dict[str, object] = {
        "id": new_id("clk"),
        "impression_id": claims.impression_id,
        "at": clock.now().isoformat(),
        "publisher_id": claims.publisher_id,
        "campaign_id": claims.campaign_id,
        "ad_id": claims.ad_id,
        "school_id": claims.school_id,
        "is_bot": is_bot or is_prefetch,
    }
    charge = _charge(claims, target, not (is_bot or is_prefetch or claims.expired), event)
    return ClickOutcome(with_utm(target.landing_url, claims.publisher_id), charge.counted, charge.charged_cents)
