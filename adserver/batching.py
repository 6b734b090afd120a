"""Sending many small writes as one: a background thread hands what requests add to a send
function, in batches.

Lead intake uses it for the Redis call that follows each commit (the live counters and the
delivery job's announcement): a Redis round trip costs a request more than its own logic, and
under load one round trip now carries every lead accepted in the last ``interval_s``. A lone
item is sent at once; items that arrive sooner than ``interval_s`` after the last send wait for
the next one. What is pending when the process exits normally is sent then; what a killed process
held is lost, so only writes that something else repairs may go through a batcher (the sweeper
re-sends lost announcements; intake checks caps against the database, not these counters).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from flask import Flask

log = logging.getLogger(__name__)

T = TypeVar("T")

_batchers: weakref.WeakSet[BackgroundBatcher[Any]] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for batcher in list(_batchers):
        batcher._start_afresh()


os.register_at_fork(after_in_child=_after_fork_in_child)


class BackgroundBatcher(Generic[T]):
    def __init__(self, app: Flask, send: Callable[[list[T]], None], *, name: str, interval_s: float) -> None:
        self._app = app
        self._send = send
        self._name = name
        self._interval_s = interval_s
        self._start_afresh()
        _batchers.add(self)

    def _start_afresh(self) -> None:
        """No thread, nothing pending, no lock held: at creation, and in a forked child, whose copies
        of the parent's locks may be held by threads it does not have (the parent's items are the
        parent's to send)."""
        self._pending: list[T] = []
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._sending = threading.Lock()  # one send at a time: the thread's or flush()'s
        self._started = False
        self._last_send = float("-inf")

    def add(self, item: T) -> None:
        with self._lock:
            if not self._started:  # the first item in this process
                self._started = True
                threading.Thread(target=self._run, name=self._name, daemon=True).start()
                atexit.register(self.flush)
            self._pending.append(item)
            self._wake.notify()

    def flush(self) -> None:
        """Send what is pending now, in the calling thread."""
        with self._sending:
            self._send_pending()

    def _take(self) -> list[T]:
        with self._lock:
            batch, self._pending = self._pending, []
            return batch

    def _send_pending(self) -> None:
        batch = self._take()
        if not batch:
            return
        try:
            with self._app.app_context():
                self._send(batch)
        except Exception as exc:
            log.warning("%s: %d items not sent (%s)", self._name, len(batch), type(exc).__name__, exc_info=True)
        self._last_send = time.monotonic()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending:
                    self._wake.wait()
            wait = self._last_send + self._interval_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            with self._sending:
                self._send_pending()
