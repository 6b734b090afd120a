"""Rebuilding campaigns' money hashes from the database after Redis lost its data.

A campaign whose money hash is not built (``ok`` missing: Redis was flushed, restarted empty or
failed over, or the campaign is new) is not served and its clicks are not charged until it is
rebuilt, since a budget checked against counts that restarted at 0 could be overspent.

A rebuild, per campaign:

1. ``begin`` stamps the hash with this rebuild's token (a later rebuild's stamp replaces it);
2. under the money fence (``usage.money_fence``), the database's figures are read: spend of the
   school's day and in total, leads of its day and month (``usage.spent_since``, ``leads_since``);
3. ``finish`` adds those figures to the hash and marks it built, only if the hash still carries
   this rebuild's token and is not built yet; otherwise it does nothing.

Why it holds: no click is charged while the hash is not built, and a click charged before the
loss was either persisted before step 2 (so counted there) or is dropped by the events worker
(``reporting.events``), with the stream entry it came from. Leads are added to the hash by intake
after their commit, built or not, so a lead committed after step 2 is in the hash once, and one
committed before it may be counted twice (once from the database, once added), which can only stop
a campaign early, never let it overspend. Several processes may rebuild the same campaign at once:
only the last one to begin finishes. A loss during the rebuild removes the token, and ``finish``
does nothing. Everything else that is missing (history, frequency) only moves ranking or lets a
visitor see an ad again, and is not rebuilt.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app

from adserver import clock
from adserver.extensions import db, redis_client
from adserver.ids import new_id
from adserver.services.serving import counters, usage
from adserver.services.serving.counters import MONEY_LUA

log = logging.getLogger(__name__)

# KEYS: money hashes. ARGV: the token. Returns, per hash, 1 when it needs this rebuild.
_BEGIN = """
local wanted = {}
for i = 1, #KEYS do
  if redis.call('HGET', KEYS[i], 'ok') then
    wanted[i] = 0
  else
    redis.call('HSET', KEYS[i], 'rb', ARGV[1])
    wanted[i] = 1
  end
end
return wanted
"""

# KEYS: money hashes. ARGV: the token, then per hash six: day, month, spend of the day, spend in
# total, leads of the day, leads of the month. Returns how many it built.
_FINISH = (
    MONEY_LUA
    + """
local built = 0
for i = 1, #KEYS do
  local k, a = KEYS[i], 2 + (i - 1) * 6
  if redis.call('HGET', k, 'rb') == ARGV[1] and not redis.call('HGET', k, 'ok') then
    add(k, 'sd', ARGV[a], tonumber(ARGV[a + 2]))
    add(k, 'ld', ARGV[a], tonumber(ARGV[a + 4]))
    add(k, 'lm', ARGV[a + 1], tonumber(ARGV[a + 5]))
    redis.call('HINCRBY', k, 'st', ARGV[a + 3])
    redis.call('HSET', k, 'ok', '1')
    redis.call('HDEL', k, 'rb')
    built = built + 1
  end
end
return built
"""
)


def _period_starts(timezone: str, now: datetime) -> tuple[datetime, datetime]:
    """The start of the school's current day and month, in UTC."""
    local = now.astimezone(ZoneInfo(timezone))
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return day.astimezone(now.tzinfo), day.replace(day=1).astimezone(now.tzinfo)


def rebuild_money(campaigns: Iterable[tuple[str, str]]) -> int:
    """Rebuild the money hashes of these (campaign id, school time zone) that are not built, from
    the database; returns how many were built. Safe to run in several processes at once."""
    wanted = dict(campaigns)
    if not wanted:
        return 0
    ids = list(wanted)
    token = new_id("rb")
    flags = counters.script("rebuild_begin", _BEGIN)(keys=[counters.money_key(c) for c in ids], args=[token])
    ids = [campaign_id for campaign_id, flag in zip(ids, flags, strict=True) if int(flag)]
    if not ids:
        return 0
    now = clock.now()
    by_zone: dict[str, list[str]] = defaultdict(list)
    for campaign_id in ids:
        by_zone[wanted[campaign_id]].append(campaign_id)
    args: list[str | int] = [token]
    try:
        with usage.money_fence(exclusive=True):
            for timezone, zone_ids in by_zone.items():
                day_start, month_start = _period_starts(timezone, now)
                day = counters.local_day(timezone, now)
                spent_day = usage.spent_since(zone_ids, day_start)
                spent_total = usage.spent_since(zone_ids, None)
                leads_day = usage.leads_since(zone_ids, day_start)
                leads_month = usage.leads_since(zone_ids, month_start)
                for campaign_id in zone_ids:
                    args += [day, day[:6], spent_day[campaign_id], spent_total[campaign_id], leads_day[campaign_id],
                             leads_month[campaign_id]]  # fmt: skip
    finally:
        db.session.rollback()
    ordered = [campaign_id for zone_ids in by_zone.values() for campaign_id in zone_ids]
    built = int(counters.script("rebuild_finish", _FINISH)(keys=[counters.money_key(c) for c in ordered], args=args))
    if built:
        log.info("money counters rebuilt from the database", extra={"campaigns": built})
    return built


def unbuilt(campaigns: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Those of these (campaign id, time zone) whose money hash is not built; one pipeline."""
    pipe = redis_client.client.pipeline(transaction=False)
    for campaign_id, _ in campaigns:
        pipe.hexists(counters.money_key(campaign_id), "ok")
    return [c for c, built in zip(campaigns, pipe.execute(), strict=True) if not built]


class Rebuilder:
    """A process's background rebuilds: serving hands it campaigns it found not built, and a
    thread rebuilds them (one at a time, in batches), so no ad request waits for the database."""

    def __init__(self, app: Flask) -> None:
        self._app = app
        self._pending: dict[str, str] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pid: int | None = None

    def request(self, campaigns: Iterable[tuple[str, str]]) -> None:
        with self._lock:
            self._pending.update(campaigns)
            if self._pid != os.getpid():  # after a fork the parent's thread is gone
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="money-rebuild", daemon=True).start()
        self._wake.set()

    def _run(self) -> None:
        with self._app.app_context():
            while True:
                self._wake.wait()
                self._wake.clear()
                with self._lock:
                    batch, self._pending = self._pending, {}
                try:
                    rebuild_money(batch.items())
                except Exception:
                    # The database or Redis is not reachable: the campaigns stay unserved and are
                    # handed over again by the next request that finds them.
                    log.warning("money counters not rebuilt yet", exc_info=True)


def init_app(app: Flask) -> None:
    app.extensions["money_rebuilder"] = Rebuilder(app)


def rebuild_in_background(campaigns: Iterable[tuple[str, str]]) -> None:
    rebuilder: Rebuilder = current_app.extensions["money_rebuilder"]
    rebuilder.request(campaigns)
