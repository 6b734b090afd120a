"""The one Redis round trip of an ad request: a script that checks the live rules and records.

Python shortlists the campaigns (catalog rules, best estimated value first) and works out each
one's limits (``matching.CampaignLimits``, ``matching.pace_limit``); the script reads each
campaign's money hash and the visitor's frequency, compares them with the limits in ``RULES``
order, and in ``serve`` mode takes the first passing campaign of each school, in the order given,
until it has ``limit``. For those it counts the impression in the campaign's history and the
visitor's frequency and appends one entry to the impression stream, all in the same atomic call.
In ``explain`` mode it only compares.

It answers one status letter per candidate (``STATUSES``). A ``serve`` call keeps its answer under
its decision id for a while, so the redis client sending it again after a lost reply gets the same
answer and nothing is counted twice. The decision id is also the stem of the impression ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adserver.services.serving import counters
from adserver.services.serving.counters import FREQUENCY_TTL_S, IMPRESSION_STREAM, NO_LIMIT, REPEAT_GUARD_TTL_S
from adserver.services.serving.entries import CampaignEntry
from adserver.services.serving.matching import CampaignLimits

SERVED = "S"
# What each letter means: served, or the rule that excluded the campaign. "x": not looked at (its
# school already has an ad, or the answer is full); "r": its money hash must be rebuilt first (a
# campaign with neither budget nor lead cap does not wait for it).
STATUSES = {"b": "budget", "c": "lead_cap", "f": "frequency_cap", "p": "pacing", "r": "budget"}

# KEYS: 1 the decision's repeat guard, 2 the impression stream, 3 the visitor's frequency hash,
#       then for candidate j (from 0): 4 + 2j its money hash, 5 + 2j its history hash
# ARGV: 1 mode, 2 guard ttl, 3 limit, 4 frequency ttl, 5 the request's part of the events (JSON),
#       6 the decision id, 7 "1" with a visitor, then for candidate j: 8 + 4j its school's number,
#       9 + 4j its spec (see ``CandidateSpec``), 10 + 4j the school's day, 11 + 4j its pace limit
#       ("" none)
_SOURCE = """
local serve = ARGV[1] == 'serve'
if serve then
  local done = redis.call('GET', KEYS[1])
  if done then return done end
end
local limit = tonumber(ARGV[3])
local visitor = ARGV[7] == '1'
local function over(count, most) return most ~= '' and count > tonumber(most) end
local statuses, schools, served = {}, {}, {}
for j = 0, (#ARGV - 7) / 4 - 1 do
  -- A full answer ends the walk: the candidates left are not looked at.
  if serve and #served >= limit then break end
  local school, spec, day, pace = ARGV[8 + 4 * j], ARGV[9 + 4 * j], ARGV[10 + 4 * j], ARGV[11 + 4 * j]
  local status = 'x'
  if not serve or not schools[school] then
    local cid, day_max, total_max, leads_day_max, leads_month_max, frequency_max =
      string.match(spec, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|')
    local m = redis.call('HMGET', KEYS[4 + 2 * j], 'ok', 'st', 'sd', 'sd@', 'ld', 'ld@', 'lm', 'lm@')
    if not m[1] and (day_max ~= '' or total_max ~= '' or leads_day_max ~= '' or leads_month_max ~= '') then
      status = 'r'
    else
      local spent_day = (m[4] == day) and tonumber(m[3]) or 0
      local leads_day = (m[6] == day) and tonumber(m[5]) or 0
      local leads_month = (m[8] == string.sub(day, 1, 6)) and tonumber(m[7]) or 0
      if over(spent_day, day_max) or over(tonumber(m[2] or '0'), total_max) then
        status = 'b'
      elseif over(leads_day, leads_day_max) or over(leads_month, leads_month_max) then
        status = 'c'
      elseif visitor and frequency_max ~= ''
          and over(tonumber(redis.call('HGET', KEYS[3], cid .. ':' .. day) or '0'), frequency_max) then
        status = 'f'
      elseif over(spent_day, pace) then
        status = 'p'
      else
        status = 'S'
        if serve then
          schools[school] = true
          served[#served + 1] = j
        end
      end
    end
  end
  statuses[j + 1] = status
end
local answer = table.concat(statuses)
if serve and #served > 0 then
  local events = {}
  for rank, j in ipairs(served) do
    local spec, day = ARGV[9 + 4 * j], ARGV[10 + 4 * j]
    local cid, fragment = string.match(spec, '^([^|]*)|[^|]*|[^|]*|[^|]*|[^|]*|[^|]*|(.*)$')
    events[rank] = '{"id":"' .. ARGV[6] .. string.format('%02d', rank) .. '","rank":' .. rank
      .. ',"local_day":"' .. day .. '",' .. fragment .. '}'
    redis.call('HINCRBY', KEYS[5 + 2 * j], 'i', 1)
    if visitor then redis.call('HINCRBY', KEYS[3], cid .. ':' .. day, 1) end
  end
  if visitor then redis.call('EXPIRE', KEYS[3], ARGV[4]) end
  redis.call('XADD', KEYS[2], '*', 'r', ARGV[5], 'a', '[' .. table.concat(events, ',') .. ']')
  redis.call('SET', KEYS[1], answer, 'EX', ARGV[2])
end
return answer
"""


def _limit(value: int) -> str:
    return "" if value >= NO_LIMIT else str(value)


@dataclass(frozen=True, slots=True)
class CandidateSpec:
    """What the script needs of a campaign that does not change between requests, worked out when
    the index is built: its keys, its school, and per ad ``campaign|limits...|event fields``."""

    money_key: str
    history_key: str
    school: str  # the school's number in the index
    by_ad: tuple[str, ...]  # in the order of ``CampaignEntry.ads``

    @classmethod
    def of(cls, campaign: CampaignEntry, school_number: int) -> CandidateSpec:
        limits = CampaignLimits.of(campaign)
        head = "|".join([campaign.id, _limit(limits.spend_day), _limit(limits.spend_total), _limit(limits.leads_day),
                         _limit(limits.leads_month), _limit(limits.frequency)])  # fmt: skip
        # The impression's fields that come from the catalog, as JSON members (ids hold no quotes).
        fields = (f'"campaign_id":"{campaign.id}","school_id":"{campaign.school.id}",'
                  f'"pricing_model":"{campaign.pricing_model}","bid_cents":{campaign.bid_cents}')  # fmt: skip
        by_ad = tuple(f'{head}|"ad_id":"{ad.id}",{fields}' for ad in campaign.ads)
        return cls(counters.money_key(campaign.id), counters.history_key(campaign.id), str(school_number), by_ad)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A shortlisted campaign for one request: its spec, the ad it would show, the school's day and
    its pace limit."""

    spec: CandidateSpec
    ad_number: int
    day: str
    pace_limit: int


def run(
    mode: str, candidates: Sequence[Candidate], *, decision_id: str, limit: int, visitor_id: str | None,
    request_json: str,
) -> str:  # fmt: skip
    """Send the script; returns one status letter per candidate, in order."""
    keys = [counters.done_key(decision_id), IMPRESSION_STREAM,
            counters.frequency_key(visitor_id) if visitor_id else "freq:-"]  # fmt: skip
    args: list[str | int] = [mode, REPEAT_GUARD_TTL_S, limit, FREQUENCY_TTL_S, request_json, decision_id,
                             "1" if visitor_id else "0"]  # fmt: skip
    for c in candidates:
        keys += (c.spec.money_key, c.spec.history_key)
        args += (c.spec.school, c.spec.by_ad[c.ad_number], c.day, _limit(c.pace_limit))
    answer = counters.script("decision", _SOURCE)(keys=keys, args=args)
    statuses = answer.decode() if isinstance(answer, bytes) else str(answer)
    return statuses.ljust(len(candidates), "x")  # those after a full answer were not looked at


def impression_id(decision_id: str, rank: int) -> str:
    """The id the script gives the impression at ``rank`` (from 1)."""
    return f"{decision_id}{rank:02d}"
