"""A lead's request id follows it from intake into every log line of its delivery: the attempts a
worker makes, the retries, and the sweeper's re-sends."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import requests

from bench.common import BIN, ROOT, free_port, start_gunicorn, stop
from tests.leads.conftest import Scripted, wait_for

REQUEST_ID = "req-lead-trace-0001"


@contextmanager
def json_log_lines() -> Iterator[list[dict[str, Any]]]:
    """The lines the app logs in the block (at INFO and above), as its JSON log handler writes them;
    the list is filled when the block ends."""
    from adserver.logs import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        lines += [json.loads(line) for line in stream.getvalue().splitlines()]


def _submit(client, world, request_id: str = REQUEST_ID) -> str:
    response = client.post("/v1/leads", json=world.lead(),
                           headers={**world.publisher_headers, "X-Request-Id": request_id})  # fmt: skip
    assert response.status_code == 201, response.get_json()
    assert response.headers["X-Request-Id"] == request_id
    return str(response.get_json()["id"])


def test_every_delivery_attempt_of_a_lead_logs_the_request_that_submitted_it(app, client, http_world,
                                                                               school_server):  # fmt: skip
    from adserver.extensions import db
    from adserver.services.leads.delivery import deliver_job

    school_server.answer(Scripted(503), Scripted(200))
    lead_id = _submit(client, http_world)

    def attempt() -> str | None:
        outcome = deliver_job(lead_id)  # None until the retry is due (DELIVERY_RETRY_BASE_S, 0.2 s in tests)
        db.session.remove()
        return outcome

    with json_log_lines() as captured, app.app_context():
        assert attempt() == "retry"
        assert wait_for(attempt, timeout_s=10, what="the retry to fall due") == "delivered"

    attempts = [line for line in captured if line["msg"] == "lead delivery attempt" and line["lead_id"] == lead_id]
    assert [line["outcome"] for line in attempts] == ["retry", "delivered"]
    assert {line.get("request_id") for line in attempts} == {REQUEST_ID}


def test_the_sweepers_resend_of_a_lost_job_logs_the_request_that_submitted_it(app, client, http_world):
    from adserver.extensions import db, redis_client
    from adserver.models import Lead
    from adserver.models.base import utcnow
    from adserver.services.leads.delivery import OUTBOX_KEY, sweep_due_jobs

    lead_id = _submit(client, http_world)
    with json_log_lines() as captured, app.app_context():
        redis_client.client.delete("leads", OUTBOX_KEY)  # the announcement and any message are lost
        lead = db.session.get(Lead, lead_id)
        lead.next_attempt_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
        assert sweep_due_jobs() == 1
        db.session.remove()

    resent = [line for line in captured if line.get("lead_id") == lead_id and "sweeper" in line["msg"]]
    assert len(resent) == 1
    assert resent[0].get("request_id") == REQUEST_ID


def test_a_real_worker_logs_the_request_id_of_the_lead_it_delivers(app, http_world, school_server, tmp_path):
    web_port = free_port()
    web = start_gunicorn("wsgi:app", web_port, workers=1)
    log_path = tmp_path / "worker.log"
    with open(log_path, "ab") as log:
        worker = subprocess.Popen(
            [str(BIN / "celery"), "-A", "workers", "worker", "-Q", "leads", "--concurrency", "1", "--loglevel", "INFO",
             "--hostname", f"request-ids-{time.monotonic_ns()}@%h", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        response = requests.post(f"http://127.0.0.1:{web_port}/v1/leads", json=http_world.lead(),
                                 headers={**http_world.publisher_headers, "X-Request-Id": REQUEST_ID},
                                 timeout=30)  # fmt: skip
        assert response.status_code == 201, response.text
        lead_id = response.json()["id"]
        wait_for(lambda: school_server.received, timeout_s=60, what="the worker to deliver the lead")

        def attempt_lines() -> list[dict[str, Any]]:
            lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
            return [line for line in lines if line.get("lead_id") == lead_id and line["msg"] == "lead delivery attempt"]

        (attempt,) = wait_for(attempt_lines, timeout_s=30, what="the worker's log line of the attempt")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        stop(web)
    assert attempt["outcome"] == "delivered"
    assert attempt["request_id"] == REQUEST_ID
