"""Live counters in Redis: each campaign's money and lead counts, its history, visitors' frequency.

Every key the serving path reads or writes is named here. Days and months are the school's local
calendar (its time zone), so a daily budget resets at the school's midnight.

Keys (``{c}`` a campaign id):

* ``money:{c}``: a hash of what budgets and caps are checked against: ``st`` cents spent ever;
  ``sd`` cents spent on the day ``sd@`` (``YYYYMMDD``); ``ld`` leads on the day ``ld@``; ``lm``
  leads in the month ``lm@`` (``YYYYMM``). A count whose day has passed counts as 0. ``ok`` says
  the hash was built from the database (``rebuild``): without it, after Redis lost its data, the
  campaign is not served and its clicks are not charged until it is rebuilt. Lead counts are
  added to the hash whether or not it is built (the rebuild adds the database's figures to them).
* ``hist:{c}``: a hash of the history behind rate estimates: ``i`` impressions, ``c`` counted
  clicks, ``k`` kept leads (accepted, then neither rejected nor returned).
* ``freq:{visitor}``: a hash of ``{c}:{day}`` -> impressions served to that visitor.
* ``clicked:{impression}``: the click id and the cents charged, once the impression's click counted.
* ``done:{id}``: set by a script that must not count twice when the client sends it again after
  a lost reply (the redis client retries a command whose reply it did not get); it holds the
  first call's answer for a repeat to return.

Ad requests read and write these in one script (``decision_script``); a click, a batch of accepted
leads and a lead that is rejected or returned are one script call each.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from redis.commands.core import Script

from adserver.extensions import redis_client

FREQUENCY_TTL_S = 2 * 86_400
# Click tokens expire after 24 hours, so a counted click need not be remembered longer.
CLICK_DEDUPE_TTL_S = 25 * 3_600
# Long enough for every retry of the redis client (10 tries, each up to its 5 s socket timeout).
REPEAT_GUARD_TTL_S = 120
# A budget or cap that is not set: no count ever reaches it.
NO_LIMIT = 2**52

IMPRESSION_STREAM = "events:impressions"
CLICK_STREAM = "events:clicks"


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_day(timezone: str, at: datetime) -> str:
    """The school's calendar day for ``at``, as ``YYYYMMDD``."""
    return at.astimezone(zone(timezone)).strftime("%Y%m%d")


def money_key(campaign_id: str) -> str:
    return f"money:{campaign_id}"


def history_key(campaign_id: str) -> str:
    return f"hist:{campaign_id}"


def frequency_key(visitor_id: str) -> str:
    return f"freq:{visitor_id}"


def clicked_key(impression_id: str) -> str:
    return f"clicked:{impression_id}"


def done_key(operation_id: str) -> str:
    return f"done:{operation_id}"


def script(name: str, source: str) -> Script:
    """The app's registered script ``name`` (sent by EVALSHA, loaded again if Redis lost it)."""
    scripts: dict[str, Script] = current_app.extensions.setdefault("counter_scripts", {})
    found = scripts.get(name)
    if found is None:
        found = scripts[name] = redis_client.client.register_script(source)
    return found


# Lua shared by the scripts that read or add to a money hash: a count whose period (day or month)
# has passed is 0, and an addition for a period older than the one held is not made.
MONEY_LUA = """
local function current(hash, field, period)
  local held = redis.call('HMGET', hash, field, field .. '@')
  if held[2] == period then return tonumber(held[1]) end
  return 0
end
local function add(hash, field, period, amount)
  local held = redis.call('HGET', hash, field .. '@')
  if held == period then
    redis.call('HINCRBY', hash, field, amount)
  elseif not held or held < period then
    redis.call('HSET', hash, field, amount, field .. '@', period)
  end
end
"""


@dataclass(frozen=True, slots=True)
class Money:
    """A campaign's figures in its money hash; ``built`` is False when it must be rebuilt."""

    built: bool
    spend_total: int
    spend_day: int
    leads_day: int
    leads_month: int


def read_money(campaign_id: str, day: str) -> Money:
    """The campaign's money hash, as counted for the school's day ``day``."""
    fields: Any = redis_client.client.hmget(money_key(campaign_id), ["ok", "st", "sd", "sd@", "ld", "ld@", "lm", "lm@"])
    ok, total, spent, spent_on, leads, leads_on, month, month_of = fields

    def period(value: bytes | None, held: bytes | None, wanted: str) -> int:
        return int(value) if value is not None and held == wanted.encode() else 0

    return Money(ok is not None, int(total or 0), period(spent, spent_on, day), period(leads, leads_on, day),
                 period(month, month_of, day[:6]))  # fmt: skip


# KEYS: clicked, money hash, history hash, click stream
# ARGV: click id, price, day, day limit, total limit, dedupe ttl, countable ("1"/"0"), event JSON
# The limits are the most a campaign may have spent for the click to be charged (see
# matching.CampaignLimits); -1 none. Returns [counted, charged]: counted is 1 for a counted click,
# 0 for one that is not counted (a repeat, a bot), -1 when the money hash must be rebuilt first.
_CLICK_SCRIPT = (
    MONEY_LUA
    + """
local function publish(counted, charged)
  redis.call('XADD', KEYS[4], '*', 'e', ARGV[8], 'counted', counted, 'spend_cents', charged)
end
if ARGV[7] ~= '1' then publish(0, 0) return {0, 0} end
local seen = redis.call('GET', KEYS[1])
if seen then
  local id, charged = string.match(seen, '^(.*):(%d+)$')
  if id == ARGV[1] then return {1, tonumber(charged)} end  -- this click, sent again
  publish(0, 0)
  return {0, 0}
end
local price = tonumber(ARGV[2])
local charged = 0
if price > 0 then
  if not redis.call('HGET', KEYS[2], 'ok') then return {-1, 0} end
  local day = ARGV[3]
  local total = tonumber(redis.call('HGET', KEYS[2], 'st') or '0')
  if current(KEYS[2], 'sd', day) <= tonumber(ARGV[4]) and total <= tonumber(ARGV[5]) then
    charged = price
    add(KEYS[2], 'sd', day, price)
    redis.call('HINCRBY', KEYS[2], 'st', price)
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. charged, 'EX', ARGV[6])
redis.call('HINCRBY', KEYS[3], 'c', 1)
publish(1, charged)
return {1, charged}
"""
)


@dataclass(frozen=True, slots=True)
class ClickCharge:
    counted: bool
    charged_cents: int
    needs_rebuild: bool = False


def record_click(
    *,
    click_id: str,
    impression_id: str,
    campaign_id: str,
    day: str,
    price_cents: int,
    day_limit: int,
    total_limit: int,
    countable: bool,
    event: dict[str, object],
) -> ClickCharge:
    """Count the impression's click once (when ``countable``), taking ``price_cents`` of spend when
    the campaign has spent no more than the limits, and publish it to the click stream; one script.
    Sent again after a lost reply, the same click is neither counted nor charged twice."""
    keys = [clicked_key(impression_id), money_key(campaign_id), history_key(campaign_id), CLICK_STREAM]
    args: list[str | int] = [click_id, price_cents, day, day_limit, total_limit, CLICK_DEDUPE_TTL_S,
                             "1" if countable else "0", json.dumps(event, separators=(",", ":"))]  # fmt: skip
    counted, charged = script("record_click", _CLICK_SCRIPT)(keys=keys, args=args)
    if int(counted) < 0:
        return ClickCharge(False, 0, needs_rebuild=True)
    return ClickCharge(int(counted) == 1, int(charged))


# KEYS: for each lead four: its repeat guard, the money hash, the history hash, a list to push to (or "-")
# ARGV: guard ttl, then for each lead four: day, month, spend (0: none), the value to push ("": none)
_LEAD_SCRIPT = (
    MONEY_LUA
    + """
local counted = 0
for i = 0, #KEYS / 4 - 1 do
  local k, a = i * 4, 1 + i * 4
  if redis.call('SET', KEYS[k + 1], '1', 'NX', 'EX', ARGV[1]) then
    counted = counted + 1
    local money = KEYS[k + 2]
    add(money, 'ld', ARGV[a + 1], 1)
    add(money, 'lm', ARGV[a + 2], 1)
    local spend = tonumber(ARGV[a + 3])
    if spend > 0 then
      add(money, 'sd', ARGV[a + 1], spend)
      redis.call('HINCRBY', money, 'st', spend)
    end
    redis.call('HINCRBY', KEYS[k + 3], 'k', 1)
    if ARGV[a + 4] ~= '' then redis.call('LPUSH', KEYS[k + 4], ARGV[a + 4]) end
  end
end
return counted
"""
)


@dataclass(frozen=True, slots=True)
class AcceptedLead:
    """A lead that was just committed, as the live counters see it."""

    lead_id: str
    campaign_id: str
    school_timezone: str
    price_cents: int
    pricing_model: str
    at: datetime
    # A list key and a value pushed with the counts: intake announces the lead's delivery job so.
    also_push: tuple[str, str] | None = None


def record_leads_accepted(leads: Sequence[AcceptedLead]) -> None:
    """Count leads that were committed, in one round trip (one script call): each campaign's leads
    for the day and the month (the school's calendar) and its kept leads, and, for CPL, its spend
    for the day and in total; and push each lead's ``also_push``. Each lead counts once, even if
    the call is sent again.

    Serving reads these counters to stop a campaign at its caps and budgets; intake checks them
    against the database. Intake calls this through a batcher after its commits
    (``adserver.batching``); a Redis failure is raised to the caller.
    """
    keys: list[str] = []
    args: list[str | int] = [REPEAT_GUARD_TTL_S]
    for lead in leads:
        day = local_day(lead.school_timezone, lead.at)
        spend = lead.price_cents if lead.pricing_model == "cpl" and lead.price_cents > 0 else 0
        push_key, push_value = lead.also_push or ("-", "")
        keys += [done_key(lead.lead_id), money_key(lead.campaign_id), history_key(lead.campaign_id), push_key]
        args += [day, day[:6], spend, push_value]
    if keys:
        script("record_lead", _LEAD_SCRIPT)(keys=keys, args=args)


# KEYS: the repeat guard, the history hash. ARGV: guard ttl.
_UNKEPT_SCRIPT = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then redis.call('HINCRBY', KEYS[2], 'k', -1) end
return 1
"""


def record_lead_not_kept(lead_id: str, campaign_id: str) -> None:
    """A lead the school rejected or returned leaves the campaign's kept leads (once, even if the
    call is sent again)."""
    keys = [done_key(f"unkept:{lead_id}"), history_key(campaign_id)]
    script("unkept_lead", _UNKEPT_SCRIPT)(keys=keys, args=[REPEAT_GUARD_TTL_S])
