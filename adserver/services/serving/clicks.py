"""Clicks: verify the token, count the click once, take CPC spend, and say where to send the visitor.

A click is counted (and, for CPC, charged) at most once per impression, and
only when a person made it: declared bots and browser prefetches are sent on
but flagged and not counted, and leave the impression's click available for
the person who follows. An expired token (older than 24 hours) still
redirects but is not counted. Every click, counted or not, goes to the click
stream for the events worker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from adserver import clock
from adserver.errors import ApiError
from adserver.extensions import db
from adserver.ids import new_id
from adserver.models import Ad
from adserver.services.serving import counters
from adserver.services.serving.index import current_index
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


def _landing(claims: ClickTokenClaims) -> tuple[str, str | None, int | None, int | None]:
    """Landing URL, school time zone and budgets, from the index (or the database for an ad it no longer holds)."""
    found = current_index().ads_by_id.get(claims.ad_id)
    if found is not None:
        ad, campaign = found
        return ad.landing_url, campaign.school.timezone, campaign.daily_budget_cents, campaign.total_budget_cents
    row = db.session.get(Ad, claims.ad_id)
    if row is None or row.campaign_id != claims.campaign_id:
        raise ApiError(404, "not_found", "No such ad.")
    campaign_row = row.campaign
    return (row.landing_url, campaign_row.school.timezone, campaign_row.daily_budget_cents,
            campaign_row.total_budget_cents)  # fmt: skip


def record_click(token: str, *, is_bot: bool, is_prefetch: bool) -> ClickOutcome:
    """Verify a click token and count the click; 404 for a tampered or foreign token."""
    try:
        claims = parse_click_token(token)
    except InvalidToken:
        raise ApiError(404, "not_found", "No such link.") from None
    landing_url, timezone, daily_budget, total_budget = _landing(claims)
    now = clock.now()
    counted, charged = False, 0
    if not (is_bot or is_prefetch or claims.expired) and timezone is not None:
        price = claims.bid_cents if claims.pricing_model == "cpc" else 0
        result = counters.record_click(
            impression_id=claims.impression_id, campaign_id=claims.campaign_id,
            day=counters.local_day(timezone, now), price_cents=price,
            daily_budget_cents=daily_budget, total_budget_cents=total_budget,
        )  # fmt: skip
        counted, charged = result is not None, result or 0
    counters.publish_click(
        {
            "id": new_id("clk"),
            "impression_id": claims.impression_id,
            "at": now.isoformat(),
            "publisher_id": claims.publisher_id,
            "campaign_id": claims.campaign_id,
            "ad_id": claims.ad_id,
            "school_id": claims.school_id,
            "is_bot": is_bot or is_prefetch,
            "counted": counted,
            "spend_cents": charged,
        }
    )
    return ClickOutcome(with_utm(landing_url, claims.publisher_id), counted, charged)
