"""Click and lead tokens: what an ad carries, signed with ``adserver.signing``.

Both are short lists of fields inside the signature, so nothing in them can be
changed without the token failing verification; the signing time is the
issued-at.

* click token (purpose ``"click"``):
  ``1.impression_id.ad_id.campaign_id.school_id.publisher_id.bid_cents.pricing_model``
* lead token (purpose ``"lead"``):
  ``1.impression_id.ad_id.campaign_id.school_id.publisher_id``

The leading 1 is the layout version; an empty publisher id means none. ``parse_lead_token``
is what ``POST /v1/leads`` uses to learn which impression, ad, campaign, school and publisher
a lead comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from adserver import clock
from adserver.signing import InvalidToken, read_token, sign_token

CLICK_TOKEN_MAX_AGE_S = 24 * 3600
_VERSION = "1"


@dataclass(frozen=True, slots=True)
class LeadTokenClaims:
    impression_id: str
    ad_id: str
    campaign_id: str
    school_id: str
    publisher_id: str | None
    issued_at: datetime
    age_s: float


@dataclass(frozen=True, slots=True)
class ClickTokenClaims:
    impression_id: str
    ad_id: str
    campaign_id: str
    school_id: str
    publisher_id: str | None
    bid_cents: int
    pricing_model: str
    issued_at: datetime
    age_s: float

    @property
    def expired(self) -> bool:
        return self.age_s > CLICK_TOKEN_MAX_AGE_S


def make_lead_token(impression_id: str, ad_id: str, campaign_id: str, school_id: str, publisher_id: str | None) -> str:
    return sign_token("lead", (_VERSION, impression_id, ad_id, campaign_id, school_id, publisher_id or ""))


def make_click_token(
    impression_id: str,
    ad_id: str,
    campaign_id: str,
    school_id: str,
    publisher_id: str | None,
    bid_cents: int,
    pricing_model: str,
) -> str:
    return sign_token(
        "click",
        (_VERSION, impression_id, ad_id, campaign_id, school_id, publisher_id or "", str(bid_cents), pricing_model),
    )


def _age_s(issued_at: datetime) -> float:
    # Measured against the app clock, so tests can age a token without waiting.
    return (clock.now() - issued_at).total_seconds()


def _check_ids(impression_id: str, ad_id: str, campaign_id: str, school_id: str, publisher_id: str) -> None:
    """Every id is 1 to 40 characters; the publisher id may be empty (none)."""
    if not all(0 < len(v) <= 40 for v in (impression_id, ad_id, campaign_id, school_id)) or len(publisher_id) > 40:
        raise InvalidToken


def parse_lead_token(token: str) -> LeadTokenClaims:
    """Verify a lead token; raise ``InvalidToken`` when it is tampered, foreign or malformed.

    The caller decides what an old token means (``age_s``); ``POST /v1/leads`` answers 410.
    """
    verified = read_token("lead", token)
    fields = verified.fields
    if len(fields) != 6 or fields[0] != _VERSION:
        raise InvalidToken
    _, impression_id, ad_id, campaign_id, school_id, publisher_id = fields
    _check_ids(impression_id, ad_id, campaign_id, school_id, publisher_id)
    return LeadTokenClaims(
        impression_id, ad_id, campaign_id, school_id, publisher_id or None,
        verified.issued_at, _age_s(verified.issued_at),
    )  # fmt: skip


def parse_click_token(token: str) -> ClickTokenClaims:
    """Verify a click token; raise ``InvalidToken`` when it is tampered, foreign or malformed."""
    verified = read_token("click", token)
    fields = verified.fields
    if len(fields) != 8 or fields[0] != _VERSION:
        raise InvalidToken
    _, impression_id, ad_id, campaign_id, school_id, publisher_id, bid, pricing_model = fields
    _check_ids(impression_id, ad_id, campaign_id, school_id, publisher_id)
    if not (bid.isascii() and bid.isdigit()) or len(bid) > 9 or pricing_model not in ("cpc", "cpl"):
        raise InvalidToken
    return ClickTokenClaims(
        impression_id, ad_id, campaign_id, school_id, publisher_id or None, int(bid), pricing_model,
        verified.issued_at, _age_s(verified.issued_at),
    )  # fmt: skip


__all__ = [
    "CLICK_TOKEN_MAX_AGE_S",
    "ClickTokenClaims",
    "InvalidToken",
    "LeadTokenClaims",
    "make_click_token",
    "make_lead_token",
    "parse_click_token",
    "parse_lead_token",
]
