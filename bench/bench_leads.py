"""Lead intake and delivery: POST /v1/leads through gunicorn beside a trivial endpoint, and the
time from POST /v1/leads to the school's receipt with an idle worker.

Builds its own data in a temporary SQLite file and an embedded Redis, and starts its own
gunicorn, Celery worker and local school server, so it runs from a fresh clone. Figures,
not pass/fail:

(a) requests per second and latency of ``POST /v1/leads`` (every request a distinct visitor,
    an http_post school, so each lead writes its delivery job and announces it; no worker runs,
    so the relay's sending of tasks is not in this figure) and of a trivial Flask JSON endpoint,
    both on gunicorn with the same settings, in three alternating rounds, and the median of the
    rounds' ratios; between them, the floor (``bench/floor_apps.py``: the same body parsed and one
    SQLite transaction, nothing else);
(b) p50/p95 from the start of ``POST /v1/leads`` to the school server receiving the signed
    delivery, one lead at a time, with a Celery worker that has nothing else to do.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_TMP = Path(tempfile.mkdtemp(prefix="adserver-bench-leads-"))
ADMIN_KEY = "sk_bench_admin_0123456789abcdef"
ENV = {
    "INSTANCE_DIR": str(_TMP / "instance"),
    "DATABASE_URL": f"sqlite:///{_TMP / 'bench.db'}",
    "SECRET_KEY": "bench-secret-key-0123456789abcdef",
    "ENCRYPTION_KEY": Fernet.generate_key().decode(),
    "ADMIN_API_KEY": ADMIN_KEY,
    "LOG_LEVEL": "WARNING",
    "PUBLIC_BASE_URL": "http://localhost:8000",
    "DELIVERY_URL_ALLOWLIST": "127.0.0.1",
    "DELIVERY_RETRY_BASE_S": "1",
    # The publisher's key stays rate limited, so the limiter's Redis call is measured, at a rate the load never meets.
    "RATE_LIMIT_LEADS_PER_KEY": "100000000/minute",
}
os.environ.update(ENV)
os.environ.pop("REDIS_URL", None)  # the embedded Redis under INSTANCE_DIR

from bench.common import (  # noqa: E402
    BIN,
    Phase,
    free_port,
    measure_in_rounds,
    percentile,
    ratio,
    start_gunicorn,
    stop,
    worst_p99,
)

LATENCY_LEADS = 60
# Intake and its baselines are measured in alternating rounds and compared round by round.
ROUNDS = 3


class SchoolReceipts:
    """The school's CRM: answers 200 at once and notes when each lead (by webhook-id) arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        receipts = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receipts.arrived.setdefault(self.headers.get("webhook-id", ""), time.monotonic())
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/leads"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def _api(port: int, method: str, path: str, body: dict[str, Any] | None, key: str = ADMIN_KEY) -> dict[str, Any]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})  # fmt: skip
    response = conn.getresponse()
    data = json.loads(response.read() or b"{}")
    conn.close()
    if response.status >= 300:
        raise RuntimeError(f"{method} {path}: {response.status} {data}")
    return dict(data)


def build_world(port: int, school_url: str) -> tuple[str, str, dict[str, Any]]:
    """A school delivering by http_post, an uncapped CPL campaign with an ad, a publisher;
    returns the publisher's secret key, a lead token for the ad and the consent block."""
    school = _api(port, "POST", "/v1/schools", {
        "name": "Bench University", "timezone": "America/Phoenix",
        "campuses": [{"name": "Tempe", "postal_code": "85281"}],
        "programs": [{"name": "BS Health Care Administration", "interest": "healthcare-administration",
                      "degree_level": "bachelor", "modality": "online"}],
        "delivery": {"method": "http_post", "url": school_url, "format": "json",
                     "field_map": {"FirstName": "first_name", "Email": "email"}, "max_attempts": 8, "timeout_s": 10},
    })  # fmt: skip
    campaign = _api(port, "POST", "/v1/campaigns", {
        "school_id": school["id"], "name": "Bench", "status": "active",
        "pricing": {"model": "cpl", "bid_cents": 4500}, "budget": {"daily_cents": None, "total_cents": None},
        "caps": {"leads_per_day": None, "leads_per_month": None},
        "targeting": {"interests": ["healthcare-administration"]},
        "eligibility": {"min_education": "high_school", "min_age": 18},
        "program_ids": [school["programs"][0]["id"]],
    })  # fmt: skip
    ad = _api(port, "POST", f"/v1/campaigns/{campaign['id']}/ads",
              {"headline": "Earn your degree", "landing_url": "https://bench.example/apply"})  # fmt: skip
    publisher = _api(port, "POST", "/v1/publishers", {"name": "Bench Guides", "domains": ["bench.example"]})

    from adserver import create_app
    from adserver.ids import new_id
    from adserver.services.serving.tokens import make_lead_token

    with create_app().app_context():
        token = make_lead_token(new_id("imp"), ad["id"], campaign["id"], school["id"], publisher["id"])
    consent = {"granted": True, "text": school["consent_text"], "page_url": "https://bench.example/medical-office"}
    return str(publisher["secret_key"]), token, consent


def lead_body(n: int, token: str, consent: dict[str, Any], area_code: int = 602) -> bytes:
    """A distinct visitor for every n: its own email and phone, so none is a duplicate (within an
    area code: phones repeat every 8,000,000 n, so each phase of the run has its own)."""
    number = n % 8_000_000
    phone = f"+1{area_code}{200 + number // 10_000:03d}{number % 10_000:04d}"
    return json.dumps({
        "lead_token": token, "first_name": "Ada", "last_name": "Lovelace", "email": f"bench.{n}@example.com",
        "phone": phone, "postal_code": "85004", "education_level": "bachelor", "graduation_year": 2010,
        "birth_year": 1990, "consent": consent,
    }).encode()  # fmt: skip


def measure_intake(secret: str, token: str, consent: dict[str, Any], redis_socket: Path) -> None:
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}

    def lead_request(n: int) -> tuple[str, str, bytes | None, dict[str, str]]:
        return "POST", "/v1/leads", lead_body(n, token, consent), headers

    def floor_request(n: int) -> tuple[str, str, bytes | None, dict[str, str]]:
        return "POST", "/floor/leads", lead_body(n, token, consent), headers

    def ping_request(n: int) -> tuple[str, str, bytes | None, dict[str, str]]:
        return "GET", "/ping", None, {}

    # The floor (bench/floor_apps.py) parses the same body and does one SQLite transaction, with none
    # of intake's logic.
    # Every lead a new visitor: phones repeat after 8,000,000 (see lead_body).
    phases = (Phase("trivial GET /ping", "bench.trivial_app:app", ping_request),
              Phase("floor: 1 transaction", "bench.floor_apps:leads", floor_request, distinct=8_000_000),
              Phase("POST /v1/leads", "wsgi:app", lead_request, distinct=8_000_000))  # fmt: skip
    floor_env = {"FLOOR_REDIS_SOCKET": str(redis_socket), "FLOOR_SQLITE": str(_TMP / "floor.db")}
    figures = measure_in_rounds(phases, rounds=ROUNDS, warmup_s=1.5, duration_s=5.0, env={**ENV, **floor_env})
    trivial = figures["trivial GET /ping"]
    print(f"  floor : trivial = {ratio(figures['floor: 1 transaction'], trivial)[0]:.2f}", flush=True)
    intake, by_round = ratio(figures["POST /v1/leads"], trivial)
    intake_p99 = worst_p99(figures["POST /v1/leads"])
    print(f"  intake : trivial = {intake:.3f}  (target at least a third, 0.333; rounds: "
          f"{', '.join(f'{r:.3f}' for r in by_round)}; intake p99 {intake_p99:.1f} ms)", flush=True)  # fmt: skip


def settle_backlog() -> int:
    """The intake run left one delivery job per lead; close them so the worker starts idle (their
    announcements and messages then find nothing to do and are dropped quickly)."""
    from sqlalchemy import update

    from adserver import create_app
    from adserver.extensions import db
    from adserver.models import Lead

    with create_app().app_context():
        done = db.session.execute(update(Lead).where(Lead.delivery_state == "pending").values(delivery_state="done"))
        db.session.commit()
        return int(done.rowcount)  # type: ignore[attr-defined]


def queued_messages() -> int:
    """Delivery messages and job announcements still waiting for the worker and its relay."""
    from adserver import create_app
    from adserver.extensions import redis_client
    from adserver.services.leads.delivery import OUTBOX_KEY

    with create_app().app_context():
        return int(redis_client.client.llen("leads")) + int(redis_client.client.llen(OUTBOX_KEY))


def measure_time_to_school(port: int, secret: str, token: str, consent: dict[str, Any],
                           receipts: SchoolReceipts, worker: subprocess.Popen[bytes]) -> None:  # fmt: skip
    import http.client

    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    delays: list[float] = []
    for n in range(LATENCY_LEADS):
        body = lead_body(9_000_000 + n, token, consent, area_code=480)
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/v1/leads", body=body, headers=headers)
        response = conn.getresponse()
        lead_id = json.loads(response.read())["id"]
        conn.close()
        deadline = time.monotonic() + 10
        while lead_id not in receipts.arrived and time.monotonic() < deadline:
            if worker.poll() is not None:
                raise RuntimeError(f"the Celery worker exited with {worker.returncode}")
            time.sleep(0.001)
        if lead_id in receipts.arrived:
            delays.append((receipts.arrived[lead_id] - started) * 1000)
        time.sleep(0.05)  # one lead at a time: the worker is idle when each arrives
    print(f"  POST /v1/leads -> school receipt: p50 {percentile(delays, 50):.1f} ms  "
          f"p95 {percentile(delays, 95):.1f} ms  ({len(delays)} of {LATENCY_LEADS} leads received)")  # fmt: skip


def main() -> int:
    from flask_migrate import upgrade

    from adserver import create_app, embedded_redis
    from config.settings import load_settings

    settings = load_settings()
    receipts = SchoolReceipts()
    worker: subprocess.Popen[bytes] | None = None
    web: subprocess.Popen[bytes] | None = None
    try:
        with create_app(settings).app_context():
            upgrade()
        port = free_port()
        web = start_gunicorn("wsgi:app", port, env=ENV, workers=2)
        secret, token, consent = build_world(port, receipts.url)
        stop(web)
        web = None

        print(f"(a) requests per second through gunicorn (2 workers), {ROUNDS} alternating rounds; every lead a new"
              " visitor:", flush=True)  # fmt: skip
        measure_intake(secret, token, consent, settings.embedded_redis_socket)

        print("(b) time from POST /v1/leads to the school's receipt, idle worker (concurrency 2):", flush=True)
        closed = settle_backlog()
        worker = subprocess.Popen(
            [str(BIN / "celery"), "--quiet", "-A", "workers", "worker", "-Q", "leads", "--concurrency", "2",
             "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env={**os.environ, **ENV}, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while queued_messages() and time.monotonic() < deadline:
            if worker.poll() is not None:
                raise RuntimeError(f"the Celery worker exited with {worker.returncode}")
            time.sleep(0.2)
        print(f"  ({closed} intake jobs closed; their queued messages drained)", flush=True)
        web = start_gunicorn("wsgi:app", port, env=ENV, workers=2)
        measure_time_to_school(port, secret, token, consent, receipts, worker)
    finally:
        if web is not None:
            stop(web)
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        receipts.httpd.shutdown()
        embedded_redis.stop(settings.embedded_redis_socket)
        shutil.rmtree(_TMP, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
