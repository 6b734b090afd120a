"""Each campaign's estimated value per impression, from its history, refreshed every few seconds.

The history behind the rate estimates (impressions, counted clicks, kept leads: the ``hist:{c}``
hashes) moves slowly, so it is not read per request: a thread in each process reads it for every
servable campaign about every ``REFRESH_S`` and works out the values (``ranking.expected_value``),
a slice of ``SLICE`` campaigns at a time, so it never holds the interpreter from a request for long.
Requests rank their candidates by the latest values, in an order worked out once per refresh
(``Ranking``); a campaign the process has no value for yet starts at its prior. Under test the
values are read on every use, as tests change the history and ask straight away.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from flask import Flask, current_app

from adserver.services.serving import counters
from adserver.services.serving.entries import CampaignEntry
from adserver.services.serving.index import CampaignIndex, current_index
from adserver.services.serving.ranking import expected_value

log = logging.getLogger(__name__)

REFRESH_S = 2.0
SLICE = 1_000
_FIELDS = ("i", "c", "k")


# KEYS: history hashes. Returns their impressions, clicks and kept leads, three values per hash
# ("0" for none), in one reply: far cheaper for the client than a command per campaign.
_READ_SCRIPT = """
local out = {}
for i = 1, #KEYS do
  local h = redis.call('HMGET', KEYS[i], 'i', 'c', 'k')
  out[#out + 1] = h[1] or '0'
  out[#out + 1] = h[2] or '0'
  out[#out + 1] = h[3] or '0'
end
return out
"""


def read_values(campaigns: Sequence[CampaignEntry]) -> dict[str, float]:
    """These campaigns' expected values per impression, from their history in Redis; one script call."""
    if not campaigns:
        return {}
    found = counters.script("read_history", _READ_SCRIPT)(keys=[counters.history_key(c.id) for c in campaigns])
    values: dict[str, float] = {}
    for n, campaign in enumerate(campaigns):
        impressions, clicks, kept = int(found[3 * n]), int(found[3 * n + 1]), int(found[3 * n + 2])
        # Kept leads go down when a lead is returned: one counted before Redis lost its data can
        # take the count below 0.
        values[campaign.id] = expected_value(campaign, impressions, clicks, max(0, kept))
    return values


@dataclass(frozen=True, slots=True)
class Ranking:
    """An index's campaigns in order of value, best first (``by_rank``: positions), and each
    position's place in that order (``rank_of``). Equal values are in random order, drawn anew at
    every refresh, so over time no campaign is favoured by its place in the catalog."""

    index: CampaignIndex
    version: int
    rank_of: list[int]
    by_rank: list[int]


def rank_campaigns(index: CampaignIndex, values: dict[str, float], version: int) -> Ranking:
    draw = random.random
    keys = [(-values.get(c.id, c.prior_value), draw()) for c in index.campaigns]
    by_rank = sorted(range(len(keys)), key=keys.__getitem__)
    rank_of = [0] * len(by_rank)
    for rank, position in enumerate(by_rank):
        rank_of[position] = rank
    return Ranking(index, version, rank_of, by_rank)


class ValueBook:
    """A process's latest campaign values, swapped whole by its refresh thread, and the campaigns'
    order by value, worked out once per refresh rather than per request."""

    def __init__(self, app: Flask) -> None:
        self._app = app
        self.values: dict[str, float] = {}
        self.version = 0  # moves on at every complete refresh
        self._ranking: Ranking | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def current(self) -> dict[str, float]:
        if current_app.testing:
            self.values = read_values(_servable(current_index()))
            self.version += 1
        elif self._pid != os.getpid():
            self._start()
        return self.values

    def ranking(self, index: CampaignIndex) -> Ranking:
        """The index's campaigns by value; recomputed when the index or the values changed."""
        values = self.current()
        ranking = self._ranking
        if ranking is None or ranking.index is not index or ranking.version != self.version:
            ranking = self._ranking = rank_campaigns(index, values, self.version)
        return ranking

    def reset(self) -> None:
        self.values = {}
        self._ranking = None

    def stop(self) -> None:
        """Stop this process's refresh thread."""
        self._stopped.set()

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()  # after a fork the parent's thread is gone
            threading.Thread(target=self._refresh, name="campaign-values", daemon=True).start()

    def _refresh(self) -> None:
        with self._app.app_context():
            while not self._stopped.is_set():
                started = time.monotonic()
                try:
                    campaigns = _servable(current_index())
                    for start in range(0, len(campaigns), SLICE):
                        self.values.update(read_values(campaigns[start : start + SLICE]))
                        time.sleep(REFRESH_S / 2 * SLICE / len(campaigns))
                    self.version += 1
                except Exception:
                    log.warning("campaign values not refreshed; ranking by the previous ones", exc_info=True)
                self._stopped.wait(max(0.1, REFRESH_S - (time.monotonic() - started)))


def _servable(index: CampaignIndex) -> list[CampaignEntry]:
    return [c for c in index.campaigns if c.servable]


def init_app(app: Flask) -> None:
    book = ValueBook(app)
    app.extensions["campaign_values"] = book
    app.extensions.setdefault("test_resets", []).append(book.reset)


def current_values() -> dict[str, float]:
    """This process's latest value of each campaign (by id)."""
    book: ValueBook = current_app.extensions["campaign_values"]
    return book.current()


def current_ranking(index: CampaignIndex) -> Ranking:
    """This process's order of the index's campaigns by their latest values."""
    book: ValueBook = current_app.extensions["campaign_values"]
    return book.ranking(index)
