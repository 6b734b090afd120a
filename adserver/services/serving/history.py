"""Each campaign's estimated value per impression, from its history, refreshed every few seconds.

The history behind the rate estimates (impressions, counted clicks, kept leads: the ``hist:{c}``
hashes) moves slowly, so it is not read per request: a thread in each process reads it for every
servable campaign about every ``REFRESH_S`` and works out the values (``ranking.expected_value``),
a slice of ``SLICE`` campaigns at a time, so it never holds the interpreter from a request for long.
Requests rank their candidates by the latest values; a campaign the process has no value for yet
starts at its prior. Under test the values are read on every use, as tests change the history and
ask straight away.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence

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


class ValueBook:
    """A process's latest campaign values, swapped whole by its refresh thread."""

    def __init__(self, app: Flask) -> None:
        self._app = app
        self.values: dict[str, float] = {}
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def current(self) -> dict[str, float]:
        if current_app.testing:
            self.values = read_values(_servable(current_index()))
        elif self._pid != os.getpid():
            self._start()
        return self.values

    def reset(self) -> None:
        self.values = {}

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
