"""Report figures stay exact when the persisting worker dies mid-batch and Redis restarts.

The real stack (gunicorn, a Celery worker, beat) runs on a Redis server of the test's own, with an
append-only file, so the test can restart it. Traffic goes through the public API; the report must
end up equal to what was generated, each event counted once.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import text

from adserver.services.reporting.events import GROUP
from adserver.services.serving.counters import CLICK_STREAM, IMPRESSION_STREAM
from tests.conftest import AD_BODY, ADMIN_KEY, campaign_body, school_body
from tests.faults.conftest import PrivateRedis, Stack
from tests.leads.conftest import wait_for

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
HUMAN = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                       "Chrome/131.0.0.0 Safari/537.36"}  # fmt: skip


class Traffic:
    """Ad requests and clicks through the stack's HTTP API, and what they should add up to."""

    def __init__(self, stack: Stack) -> None:
        self.url = stack.url
        self.http = requests.Session()
        school = self._post("/v1/schools", school_body(delivery={"method": "pull"}))
        campaign = self._post("/v1/campaigns", campaign_body(
            school["id"], [p["id"] for p in school["programs"]], pricing={"model": "cpc", "bid_cents": 125},
            budget={"daily_cents": None, "total_cents": None}))  # fmt: skip
        self._post(f"/v1/campaigns/{campaign['id']}/ads", AD_BODY)
        self.publisher = self._post("/v1/publishers", {"name": "Career Guides", "domains": ["careerguides.example"]})
        self.impressions = self.clicks = 0

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(self.url + path, json=body, headers=ADMIN, timeout=30)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def serve_and_click(self, requests_count: int) -> None:
        headers = {**HUMAN, "Authorization": f"Bearer {self.publisher['secret_key']}"}
        for number in range(requests_count):
            answer = self.http.get(f"{self.url}/v1/ads", params={"postal_code": "85004"}, headers=headers, timeout=30)
            assert answer.status_code == 200, answer.text
            ads = answer.json()["ads"]
            self.impressions += len(ads)
            if ads and number % 3 == 0:
                click = self.http.get(self.url + urlsplit(ads[0]["click_url"]).path, headers=HUMAN,
                                      allow_redirects=False, timeout=30)  # fmt: skip
                assert click.status_code == 302
                self.clicks += 1

    def totals(self) -> dict[str, Any]:
        response = self.http.get(f"{self.url}/v1/reports", params={"from": "2026-06-01", "to": "2027-06-01"},
                                 headers=ADMIN, timeout=30)  # fmt: skip
        assert response.status_code == 200, response.text
        return dict(response.json()["totals"])

    def reported(self) -> tuple[int, int, int]:
        totals = self.totals()
        return totals["impressions"], totals["clicks"], totals["spend_cents"]

    def expected(self) -> tuple[int, int, int]:
        return self.impressions, self.clicks, self.clicks * 125


def _wait_until_serving(traffic: Traffic) -> None:
    """The campaign is in every web process's index (a catalog change is served within 2 seconds)."""
    headers = {**HUMAN, "Authorization": f"Bearer {traffic.publisher['secret_key']}"}

    def serving() -> bool:
        # Asking counts impressions; these requests stay out of the expected figures, so they are
        # made before the report is ever read and accounted for here.
        answer = traffic.http.get(f"{traffic.url}/v1/ads", params={"postal_code": "85004"}, headers=headers,
                                  timeout=30)  # fmt: skip
        traffic.impressions += len(answer.json()["ads"])
        return bool(answer.json()["ads"])

    wait_for(serving, 10, interval_s=0.2, what="the new campaign to be served")


def _hold_rollup_writes(app: Any) -> Any:
    """A transaction that keeps every rollup write waiting, so a persisting worker stops mid-batch."""
    from adserver.extensions import db

    with app.app_context():
        connection = db.engine.connect()
    transaction = connection.begin()
    connection.execute(text("LOCK TABLE rollup_hourly IN EXCLUSIVE MODE"))
    return connection, transaction


def test_a_worker_killed_mid_batch_and_a_redis_restart_leave_the_report_exact(app, tmp_path, private_redis):
    from adserver.extensions import db

    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("on SQLite, holding the rollups means holding the one write lock, which stops every writer")
    stack = Stack(tmp_path, env={"REDIS_URL": private_redis.url, "EVENT_RECLAIM_IDLE_S": "2"})
    try:
        traffic = Traffic(stack)
        _wait_until_serving(traffic)
        traffic.serve_and_click(30)
        wait_for(lambda: traffic.reported() == traffic.expected(), 60, interval_s=0.5,
                 what="the first traffic to be reported")  # fmt: skip

        # The worker reads its next batch and waits on the held rollups: killed there, the batch stays pending.
        connection, transaction = _hold_rollup_writes(app)
        try:
            traffic.serve_and_click(30)
            pending = lambda: private_redis.client().xpending(IMPRESSION_STREAM, GROUP)["pending"]  # noqa: E731
            wait_for(pending, 30, interval_s=0.2, what="the worker to read a batch")
            stack.kill_worker()
        finally:
            transaction.rollback()
            connection.close()
        assert pending() > 0

        traffic.serve_and_click(15)
        private_redis.restart()  # the stream, its pending batch and the counters come back from the AOF
        assert private_redis.client().xpending(IMPRESSION_STREAM, GROUP)["pending"] > 0
        stack.start_worker()
        traffic.serve_and_click(15)

        wait_for(lambda: traffic.reported() == traffic.expected(), 90, interval_s=0.5,
                 what="the report to count every event")  # fmt: skip
        # Nothing is left to be counted later: every entry was stored and acknowledged.
        client = private_redis.client()
        assert pending() == 0 and client.xlen(IMPRESSION_STREAM) == 0 and client.xlen(CLICK_STREAM) == 0
        for name in ("beat", "worker"):
            process = getattr(stack, name)
            assert process.poll() is None, f"{name} exited after the Redis restart"
    finally:
        stack.close()


def test_the_private_redis_keeps_its_data_across_a_restart(tmp_path) -> None:
    folder = tmp_path / "redis"
    folder.mkdir()
    server = PrivateRedis(folder)
    try:
        server.client().set("kept", "1")
        server.restart()
        assert server.client().get("kept") == b"1"
    finally:
        server.stop()


def test_stored_entries_are_acknowledged_and_deleted_together_even_when_the_reply_is_lost(private_redis):
    """Redis paused past the client's timeout: the client gives up, and the server runs what it was sent
    when it wakes. Entries must then be gone from the stream, or still pending (to be reclaimed): never
    acknowledged and left in the stream, where nothing reads them again."""
    import threading
    import time

    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from adserver.services.reporting.events import acknowledge

    server = private_redis.client()
    server.xgroup_create(IMPRESSION_STREAM, GROUP, id="0", mkstream=True)
    for n in range(3):
        server.xadd(IMPRESSION_STREAM, {"e": str(n)})
    ids = [entry_id for entry_id, _ in server.xreadgroup(GROUP, "w1", {IMPRESSION_STREAM: ">"})[0][1]]

    impatient = redis.Redis(port=private_redis.port, socket_timeout=0.3, retry=Retry(NoBackoff(), 1))
    impatient.ping()
    pause = threading.Thread(target=lambda: private_redis.client().execute_command("DEBUG", "SLEEP", 1.5))
    pause.start()
    probe = redis.Redis(port=private_redis.port, socket_timeout=0.05, retry=Retry(NoBackoff(), 0))

    def asleep() -> bool:
        try:
            probe.ping()
        except redis.TimeoutError:
            return True
        return False

    wait_for(asleep, what="the private Redis to be asleep")
    with pytest.raises(redis.TimeoutError):
        acknowledge(impatient, IMPRESSION_STREAM, ids)
    pause.join()

    def state() -> tuple[int, int]:
        return server.xlen(IMPRESSION_STREAM), server.xpending(IMPRESSION_STREAM, GROUP)["pending"]

    # The server runs what it was sent once it wakes: both commands or neither, never one.
    deadline = time.monotonic() + 2
    while state() != (0, 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    left, pending = state()
    assert (left, pending) in ((0, 0), (3, 3))
