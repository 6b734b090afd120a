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
from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class CounterQuery:
    """Which counters of a campaign a decision needs; only those are read."""

    campaign_id: str
    day: str
    spend_day: bool = True
    spend_total: bool = True
    leads_day: bool = True
    leads_month: bool = True


def read_live_counters(wanted: Sequence[CounterQuery], visitor_id: str | None) -> dict[str, LiveCounters]:
    """One round trip: the wanted counters and history of each campaign, and the visitor's frequency."""
    if not wanted:
        return {}
    keys: list[str] = []
    for q in wanted:
        cid = q.campaign_id
        keys.extend(history_keys(cid))
        if q.spend_day:
            keys.append(spend_day_key(cid, q.day))
        if q.spend_total:
            keys.append(spend_total_key(cid))
        if q.leads_day:
            keys.append(leads_day_key(cid, q.day))
        if q.leads_month:
            keys.append(leads_month_key(cid, q.day[:6]))
    pipe = redis_client.client.pipeline(transaction=False)
    pipe.mget(keys)
    if visitor_id:
        pipe.hmget(frequency_key(visitor_id), [frequency_field(q.campaign_id, q.day) for q in wanted])
    replies = pipe.execute()
    values = iter([int(v) if v is not None else 0 for v in replies[0]])
    frequencies = [int(v) if v is not None else 0 for v in replies[1]] if visitor_id else [0] * len(wanted)
    out: dict[str, LiveCounters] = {}
    for position, q in enumerate(wanted):
        imps, clicks, leads = next(values), next(values), next(values)
        out[q.campaign_id] = LiveCounters(
            spend_day=next(values) if q.spend_day else 0,
            spend_total=next(values) if q.spend_total else 0,
            leads_day=next(values) if q.leads_day else 0,
            leads_month=next(values) if q.leads_month else 0,
            impressions=imps,
            clicks=clicks,
            leads=leads,
            frequency=frequencies[position],
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


_EVENT_FIELDS = tuple(ImpressionEvent.__dataclass_fields__)


# KEYS: the impression stream, the visitor's frequency hash, then each impression's history key
# ARGV: the stream payload, the frequency TTL, "1" to count frequency, then each impression's
#       frequency field (ARGV[i + 1] goes with KEYS[i])
_RECORD_SCRIPT = """
redis.call('XADD', KEYS[1], '*', 'e', ARGV[1])
for i = 3, #KEYS do
  redis.call('INCR', KEYS[i])
  if ARGV[3] == '1' then redis.call('HINCRBY', KEYS[2], ARGV[i + 1], 1) end
end
if ARGV[3] == '1' then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return #KEYS - 2
"""


def _script(name: str, source: str) -> Script:
    scripts: dict[str, Script] = current_app.extensions.setdefault("counter_scripts", {})
    script = scripts.get(name)
    if script is None:
        script = scripts[name] = redis_client.client.register_script(source)
    return script


def record_impressions(events: Sequence[ImpressionEvent]) -> None:
    """One round trip (one script): append the request's impressions to the stream as one entry,
    count each in its campaign's history and in the visitor's frequency for the school's day."""
    if not events:
        return
    payload = json.dumps([{name: getattr(e, name) for name in _EVENT_FIELDS} for e in events], separators=(",", ":"))
    visitor_id = events[0].visitor_id
    keys = [IMPRESSION_STREAM, frequency_key(visitor_id) if visitor_id else "freq:-"]
    keys += [history_keys(e.campaign_id)[0] for e in events]
    args: list[str | int] = [payload, FREQUENCY_TTL_S, "1" if visitor_id else "0"]
    args += [frequency_field(e.campaign_id, e.local_day) for e in events]
    _script("record_impressions", _RECORD_SCRIPT)(keys=keys, args=args)


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
    script = _script("record_click", _CLICK_SCRIPT)
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


# KEYS: for each lead six: leads day, leads month, history leads, spend day, spend total, a list to push to (or "-")
# ARGV: day ttl, month ttl, then for each lead two: spend (0: none), the value to push ("": none)
_LEAD_SCRIPT = """
for i = 0, #KEYS / 6 - 1 do
  local k = i * 6
  redis.call('INCR', KEYS[k + 1])
  redis.call('EXPIRE', KEYS[k + 1], ARGV[1])
  redis.call('INCR', KEYS[k + 2])
  redis.call('EXPIRE', KEYS[k + 2], ARGV[2])
  redis.call('INCR', KEYS[k + 3])
  local spend = tonumber(ARGV[3 + i * 2])
  if spend > 0 then
    redis.call('INCRBY', KEYS[k + 4], spend)
    redis.call('EXPIRE', KEYS[k + 4], ARGV[1])
    redis.call('INCRBY', KEYS[k + 5], spend)
  end
  if ARGV[4 + i * 2] ~= '' then redis.call('LPUSH', KEYS[k + 6], ARGV[4 + i * 2]) end
end
return #KEYS / 6
"""


@dataclass(frozen=True, slots=True)
class AcceptedLead:
    """A lead that was just committed, as the live counters see it."""

    campaign_id: str
    school_timezone: str
    price_cents: int
    pricing_model: str
    at: datetime
    # A list key and a value pushed with the counts: intake announces the lead's delivery job so.
    also_push: tuple[str, str] | None = None


def record_leads_accepted(leads: Sequence[AcceptedLead]) -> None:
    """Count leads that were committed, in one round trip: each campaign's lead-day and
    lead-month counters (the school's calendar) and its lead history, and, for CPL, its day and
    total spend; and push each lead's ``also_push`` (one script call).

    Serving reads these counters to stop a campaign at its caps and budgets; intake checks
    them against the database. Intake calls this through a batcher after its commits
    (``adserver.batching``); a Redis failure is raised to the caller.
    """
    keys: list[str] = []
    args: list[str | int] = [DAY_TTL_S, MONTH_TTL_S]
    for lead in leads:
        day = local_day(lead.school_timezone, lead.at)
        spend = lead.price_cents if lead.pricing_model == "cpl" and lead.price_cents > 0 else 0
        push_key, push_value = lead.also_push or ("-", "")
        campaign_id = lead.campaign_id
        keys += [leads_day_key(campaign_id, day), leads_month_key(campaign_id, day[:6]), history_keys(campaign_id)[2],
                 spend_day_key(campaign_id, day), spend_total_key(campaign_id), push_key]  # fmt: skip
        args += [spend, push_value]
    if keys:
        _script("record_lead", _LEAD_SCRIPT)(keys=keys, args=args)
