"""Live serving counters in Redis: spend, lead counts, history and frequency.

Every key the serving path reads or writes is named here. Days and months are
the school's local calendar (its time zone), so a daily budget resets at the
school's midnight. The ad path uses one pipelined read (``read_live_counters``)
and one pipelined write (``record_impressions``); a click is one Lua call
(``record_click``) so spend is checked and taken atomically.

Keys (``{c}`` a campaign id, ``{d}`` a local day ``YYYYMMDD``, ``{m}`` ``YYYYMM``):

* ``ctr:{c}:spend:d:{d}`` / ``ctr:{c}:spend:t``: cents spent that day / ever
* ``ctr:{c}:leads:d:{d}`` / ``ctr:{c}:leads:m:{m}``: accepted leads that day / month
* ``ctr:{c}:imps``, ``ctr:{c}:clicks``, ``ctr:{c}:leads``: history for rate estimates
* ``freq:{visitor}``: a hash of ``{c}:{d}`` -> impressions served to that visitor
* ``clicked:{impression}``: set once the impression's click was counted
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from flask import current_app
from redis.commands.core import Script

from adserver.extensions import redis_client

DAY_TTL_S = 3 * 86_400
MONTH_TTL_S = 40 * 86_400
FREQUENCY_TTL_S = 2 * 86_400
# Click tokens expire after 24 hours, so a counted click need not be remembered longer.
CLICK_DEDUPE_TTL_S = 25 * 3_600

IMPRESSION_STREAM = "events:impressions"
CLICK_STREAM = "events:clicks"


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_day(timezone: str, at: datetime) -> str:
    """The school's calendar day for ``at``, as ``YYYYMMDD``."""
    return at.astimezone(zone(timezone)).strftime("%Y%m%d")


def spend_day_key(campaign_id: str, day: str) -> str:
    return f"ctr:{campaign_id}:spend:d:{day}"


def spend_total_key(campaign_id: str) -> str:
    return f"ctr:{campaign_id}:spend:t"


def leads_day_key(campaign_id: str, day: str) -> str:
    return f"ctr:{campaign_id}:leads:d:{day}"


def leads_month_key(campaign_id: str, month: str) -> str:
    return f"ctr:{campaign_id}:leads:m:{month}"


def history_keys(campaign_id: str) -> tuple[str, str, str]:
    """Impressions, clicks and leads ever: the campaign's own history for rate estimates."""
    return f"ctr:{campaign_id}:imps", f"ctr:{campaign_id}:clicks", f"ctr:{campaign_id}:leads"


def frequency_key(visitor_id: str) -> str:
    return f"freq:{visitor_id}"


def frequency_field(campaign_id: str, day: str) -> str:
    return f"{campaign_id}:{day}"


def clicked_key(impression_id: str) -> str:
    return f"clicked:{impression_id}"


@dataclass(frozen=True, slots=True)
class LiveCounters:
    spend_day: int = 0
    spend_total: int = 0
    leads_day: int = 0
    leads_month: int = 0
    impressions: int = 0
    clicks: int = 0
    leads: int = 0
    frequency: int = 0


_PER_CAMPAIGN = 7


def read_live_counters(wanted: Sequence[tuple[str, str]], visitor_id: str | None) -> dict[str, LiveCounters]:
    """One round trip: the counters of each ``(campaign_id, local_day)`` and the visitor's frequency."""
    if not wanted:
        return {}
    keys: list[str] = []
    for campaign_id, day in wanted:
        keys.append(spend_day_key(campaign_id, day))
        keys.append(spend_total_key(campaign_id))
        keys.append(leads_day_key(campaign_id, day))
        keys.append(leads_month_key(campaign_id, day[:6]))
        keys.extend(history_keys(campaign_id))
    pipe = redis_client.client.pipeline(transaction=False)
    pipe.mget(keys)
    if visitor_id:
        pipe.hmget(frequency_key(visitor_id), [frequency_field(c, d) for c, d in wanted])
    replies = pipe.execute()
    values = [int(v) if v is not None else 0 for v in replies[0]]
    frequencies = [int(v) if v is not None else 0 for v in replies[1]] if visitor_id else [0] * len(wanted)
    out: dict[str, LiveCounters] = {}
    for position, (campaign_id, _day) in enumerate(wanted):
        base = position * _PER_CAMPAIGN
        spend_day, spend_total, leads_day, leads_month, imps, clicks, leads = values[base : base + _PER_CAMPAIGN]
        out[campaign_id] = LiveCounters(
            spend_day, spend_total, leads_day, leads_month, imps, clicks, leads, frequencies[position]
        )
    return out


@dataclass(frozen=True, slots=True)
class ImpressionEvent:
    """One served ad, as the events worker persists it (see ``models.events.Impression``)."""

    id: str
    request_id: str
    at: str  # ISO-8601 UTC
    publisher_id: str | None
    campaign_id: str
    ad_id: str
    school_id: str
    rank: int
    pricing_model: str
    bid_cents: int
    postal_code: str
    country: str
    region: str
    interest: str | None
    visitor_id: str | None
    is_bot: bool
    local_day: str


def record_impressions(events: Iterable[ImpressionEvent]) -> None:
    """One round trip: append each impression to the stream, count it in the campaign's
    history and in the visitor's frequency for the school's day."""
    pipe = redis_client.client.pipeline(transaction=False)
    frequency_keys: set[str] = set()
    count = 0
    for event in events:
        count += 1
        pipe.xadd(IMPRESSION_STREAM, {"e": json.dumps(asdict(event), separators=(",", ":"))})
        pipe.incr(history_keys(event.campaign_id)[0])
        if event.visitor_id:
            key = frequency_key(event.visitor_id)
            pipe.hincrby(key, frequency_field(event.campaign_id, event.local_day), 1)
            frequency_keys.add(key)
    for key in frequency_keys:
        pipe.expire(key, FREQUENCY_TTL_S)
    if count:
        pipe.execute()


# KEYS: clicked, spend day, spend total, history clicks
# ARGV: price, daily budget (-1: none), total budget (-1: none), dedupe ttl, day ttl
# Returns -1 for a repeated click, else the cents charged (0 once a budget is reached).
# Spend is taken only while it is below the budget, so it never passes a budget by
# more than one click's price.
_CLICK_SCRIPT = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[4]) then return -1 end
redis.call('INCR', KEYS[4])
local price = tonumber(ARGV[1])
if price <= 0 then return 0 end
local daily = tonumber(ARGV[2])
local total = tonumber(ARGV[3])
local spent_day = tonumber(redis.call('GET', KEYS[2]) or '0')
local spent_total = tonumber(redis.call('GET', KEYS[3]) or '0')
if (daily >= 0 and spent_day >= daily) or (total >= 0 and spent_total >= total) then return 0 end
redis.call('INCRBY', KEYS[2], price)
redis.call('EXPIRE', KEYS[2], ARGV[5])
redis.call('INCRBY', KEYS[3], price)
return price
"""


def record_click(
    *,
    impression_id: str,
    campaign_id: str,
    day: str,
    price_cents: int,
    daily_budget_cents: int | None,
    total_budget_cents: int | None,
) -> int | None:
    """Count the impression's click once, taking ``price_cents`` of spend while under budget.

    Returns the cents charged (0 when a budget was already reached), or None for a repeat.
    """
    script: Script | None = current_app.extensions.get("click_script")
    if script is None:
        script = redis_client.client.register_script(_CLICK_SCRIPT)
        current_app.extensions["click_script"] = script
    keys = [clicked_key(impression_id), spend_day_key(campaign_id, day), spend_total_key(campaign_id),
            history_keys(campaign_id)[1]]  # fmt: skip
    args = [price_cents, _budget_arg(daily_budget_cents), _budget_arg(total_budget_cents),
            CLICK_DEDUPE_TTL_S, DAY_TTL_S]  # fmt: skip
    charged = int(script(keys=keys, args=args))
    return None if charged < 0 else charged


def _budget_arg(cents: int | None) -> int:
    return -1 if cents is None else cents


def publish_click(fields: dict[str, object]) -> None:
    """Append a click (counted or not) to the click stream for the events worker."""
    redis_client.client.xadd(CLICK_STREAM, {"e": json.dumps(fields, separators=(",", ":"))})


def record_lead_accepted(
    campaign_id: str, school_timezone: str, price_cents: int, pricing_model: str, at: datetime
) -> None:
    """Count a lead that was just committed: the campaign's lead-day and lead-month counters
    (the school's calendar) and its lead history, and, for CPL, its day and total spend.

    Call it after the lead's transaction commits. Serving reads these counters to stop a
    campaign at its caps and budgets; a Redis failure is raised to the caller, who keeps
    the lead (it is already stored) and may log the miss.
    """
    day = local_day(school_timezone, at)
    pipe = redis_client.client.pipeline(transaction=True)
    pipe.incr(leads_day_key(campaign_id, day))
    pipe.expire(leads_day_key(campaign_id, day), DAY_TTL_S)
    pipe.incr(leads_month_key(campaign_id, day[:6]))
    pipe.expire(leads_month_key(campaign_id, day[:6]), MONTH_TTL_S)
    pipe.incr(history_keys(campaign_id)[2])
    if pricing_model == "cpl" and price_cents > 0:
        pipe.incrby(spend_day_key(campaign_id, day), price_cents)
        pipe.expire(spend_day_key(campaign_id, day), DAY_TTL_S)
        pipe.incrby(spend_total_key(campaign_id), price_cents)
    pipe.execute()
