"""The background batcher: everything added is sent once, fewer sends than items under load,
a failed send does not stop later ones, and a forked process sends its own items, even when it was
forked in the middle of a send."""

from __future__ import annotations

import json
import multiprocessing
import threading
from typing import Any

import pytest

from adserver.batching import BackgroundBatcher
from adserver.extensions import redis_client
from tests.leads.conftest import wait_for

SENT = "test:batches"


def _to_redis(batch: list[str]) -> None:
    """One Redis list entry per send, holding that batch."""
    redis_client.client.rpush(SENT, json.dumps(batch))


def _batches(app: Any) -> list[list[str]]:
    with app.app_context():
        return [json.loads(entry) for entry in redis_client.client.lrange(SENT, 0, -1)]


def test_items_from_many_threads_are_each_sent_once_in_few_sends(app: Any) -> None:
    batcher = BackgroundBatcher(app, _to_redis, name="test", interval_s=0.05)

    def add(thread: int) -> None:
        for n in range(100):
            batcher.add(f"{thread}-{n}")

    threads = [threading.Thread(target=add, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_for(lambda: sum(len(batch) for batch in _batches(app)) >= 400, 10)
    sent = [item for batch in _batches(app) for item in batch]
    assert sorted(sent) == sorted(f"{t}-{n}" for t in range(4) for n in range(100))
    assert len(_batches(app)) < 400


def test_a_lone_item_is_sent_without_waiting_for_another(app: Any) -> None:
    batcher = BackgroundBatcher(app, _to_redis, name="test", interval_s=3600)
    batcher.add("alone")
    assert wait_for(lambda: _batches(app), 10) == [["alone"]]


def test_flush_sends_what_is_pending_in_the_calling_thread(app: Any) -> None:
    batcher = BackgroundBatcher(app, _to_redis, name="test", interval_s=3600)
    batcher.add("first")
    wait_for(lambda: _batches(app), 10)
    batcher.add("second")  # waits an hour for the thread, unless flushed
    batcher.flush()
    assert _batches(app) == [["first"], ["second"]]


def test_a_failed_send_is_logged_and_later_items_still_go(app: Any, caplog: pytest.LogCaptureFixture) -> None:
    def send(batch: list[str]) -> None:
        if "poison" in batch:
            raise RuntimeError("the backing service refused")
        _to_redis(batch)

    batcher = BackgroundBatcher(app, send, name="test", interval_s=3600)
    batcher.add("poison")
    batcher.flush()
    batcher.add("after")
    batcher.flush()
    assert _batches(app) == [["after"]]
    assert "test: 1 items not sent (RuntimeError)" in caplog.text


def _add_in_child(app: Any, batcher: BackgroundBatcher[str]) -> None:
    batcher.add("from the child")
    wait_for(lambda: ["from the child"] in _batches(app), 10)  # sent by the child's own thread


def test_a_forked_process_sends_its_own_items_not_its_parents(app: Any) -> None:
    batcher = BackgroundBatcher(app, _to_redis, name="test", interval_s=3600)
    batcher.add("from the parent")
    wait_for(lambda: _batches(app), 10)
    batcher.add("still pending in the parent")
    child = multiprocessing.get_context("fork").Process(target=_add_in_child, args=(app, batcher))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert _batches(app) == [["from the parent"], ["from the child"]]
    batcher.flush()
    assert _batches(app)[-1] == ["still pending in the parent"]


def test_a_process_forked_during_a_send_sends_its_own_items(app: Any) -> None:
    sending, release = threading.Event(), threading.Event()

    def slow(batch: list[str]) -> None:
        if "slow" in batch:
            sending.set()
            release.wait(30)
        _to_redis(batch)

    batcher = BackgroundBatcher(app, slow, name="test", interval_s=3600)
    batcher.add("slow")
    assert sending.wait(10)  # the parent's thread is inside a send, holding the batcher's locks
    child = multiprocessing.get_context("fork").Process(target=_add_in_child, args=(app, batcher))
    child.start()
    child.join(30)
    release.set()
    if child.exitcode is None:
        child.kill()
    assert child.exitcode == 0
    wait_for(lambda: len(_batches(app)) == 2, 10)
    assert _batches(app) == [["from the child"], ["slow"]]
