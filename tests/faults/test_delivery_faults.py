"""No accepted lead is lost when a worker is killed or Redis loses its queue mid-delivery.

Each test runs the real stack (gunicorn, a Celery worker with its outbox relay, beat with the sweeper, Redis and the
database) against a local school server that takes a little while per lead.
"""

from __future__ import annotations

from collections import Counter

from standardwebhooks import Webhook

from tests.faults.conftest import Stack, delivered_count
from tests.leads.conftest import wait_for

LEADS = 200


def _check_receipts(world, school_server, lead_ids: list[str]) -> Counter[str]:
    """Every lead reached the school, each request is signed, and a repeat carries the same webhook-id."""
    receipts: Counter[str] = Counter()
    verifier = Webhook(world.secret)
    for received in list(school_server.received):
        payload = verifier.verify(received.body, received.headers)
        assert payload["id"] == received.headers["webhook-id"]
        receipts[received.headers["webhook-id"]] += 1
    assert set(receipts) == set(lead_ids)
    return receipts


def test_a_worker_killed_mid_delivery_loses_no_lead(app, stack, slow_school, school_server):
    lead_ids = stack.submit(slow_school, LEADS)
    wait_for(lambda: len(school_server.received) >= LEADS // 4, 60, what="deliveries to start")

    stack.kill_worker()
    assert delivered_count(app) < LEADS
    stack.start_worker()

    wait_for(lambda: delivered_count(app) == LEADS, 90, what="every lead to be delivered after the restart")
    receipts = _check_receipts(slow_school, school_server, lead_ids)
    assert sum(receipts.values()) >= LEADS


def test_a_redis_flush_mid_delivery_loses_no_lead(app, stack, slow_school, school_server):
    from adserver.extensions import redis_client

    lead_ids = stack.submit(slow_school, LEADS)
    wait_for(lambda: len(school_server.received) >= LEADS // 4, 60, what="deliveries to start")

    with app.app_context():
        queued = redis_client.client.llen("leads")
        redis_client.client.flushdb()
    assert queued > 0, "the flush dropped queued delivery messages"

    wait_for(lambda: delivered_count(app) == LEADS, 90, what="every lead to be delivered after the flush")
    _check_receipts(slow_school, school_server, lead_ids)


def test_without_beat_the_outbox_relay_alone_delivers_every_lead(app, tmp_path, slow_school, school_server):
    """No sweeper runs without beat, so every delivery here was sent by the worker's relay."""
    stack = Stack(tmp_path, beat=False)
    try:
        lead_ids = stack.submit(slow_school, 30)
        wait_for(lambda: delivered_count(app) == 30, 60, what="the relay to deliver every lead")
    finally:
        stack.close()
    _check_receipts(slow_school, school_server, lead_ids)
