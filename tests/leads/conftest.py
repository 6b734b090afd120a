"""Fixtures for lead tests: a real local HTTP server acting as the school's CRM, a school with
a campaign and an ad, a publisher, lead tokens minted the way serving mints them, and a
helper that runs due delivery jobs until a lead settles."""

from __future__ import annotations

import itertools
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask

from tests.conftest import bearer


@dataclass
class Scripted:
    status: int = 200
    body: bytes = b'{"ok":true}'
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    hang: bool = False


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class SchoolServer:
    """A ThreadingHTTPServer on 127.0.0.1 that answers POSTs from a script (then ``default``)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.received: list[Received] = []
        self.script: list[Scripted] = []
        self.default = Scripted()
        self.lock = threading.Lock()
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:
                    return  # the sender died mid-request: like any HTTP server, no request was received
                with server.lock:
                    server.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time())
                    )
                    answer = server.script.pop(0) if server.script else server.default
                if answer.hang:
                    server.release.wait(30)
                    return
                if answer.delay_s:
                    time.sleep(answer.delay_s)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/leads"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, *answers: Scripted) -> None:
        with self.lock:
            self.script.extend(answers)

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def school_server() -> Iterator[SchoolServer]:
    server = SchoolServer()
    yield server
    server.stop()


_emails = itertools.count(1)


def person(**overrides: Any) -> dict[str, Any]:
    """A distinct, valid visitor (email and phone differ on every call)."""
    n = next(_emails)
    body: dict[str, Any] = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": f"ada.{n}@example.com",
        "phone": f"+1 602 555 {n % 10000:04d}",
        "postal_code": "85004",
        "education_level": "bachelor",
        "graduation_year": 2010,
        "birth_year": 1990,
        "military": False,
        "rn_license": False,
        "consent": {
            "granted": True,
            "text": "By submitting, I agree that Example University may contact me.",
            "page_url": "https://careerguides.example/medical-office-manager",
        },
    }
    body.update(overrides)
    return body


@dataclass
class LeadWorld:
    """A school (delivering to the local server), its active CPL campaign and ad, and a publisher."""

    app: Flask
    school: dict[str, Any]
    campaign: dict[str, Any]
    publisher: dict[str, Any]
    school_key: str

    @property
    def publisher_headers(self) -> dict[str, str]:
        return bearer(self.publisher["secret_key"])

    @property
    def school_headers(self) -> dict[str, str]:
        return bearer(self.school_key)

    @property
    def secret(self) -> str:
        return str(self.school["delivery"]["secret"])

    def token(self, campaign: dict[str, Any] | None = None, publisher_id: str | None = "") -> str:
        from adserver.ids import new_id
        from adserver.services.serving.tokens import make_lead_token

        campaign = campaign or self.campaign
        ad_id = campaign["ad"]["id"] if "ad" in campaign else new_id("ad")
        with self.app.app_context():
            return make_lead_token(
                new_id("imp"), ad_id, campaign["id"], campaign["school_id"],
                self.publisher["id"] if publisher_id == "" else publisher_id,
            )  # fmt: skip

    def lead(self, campaign: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
        return {"lead_token": self.token(campaign), **person(**overrides)}


@pytest.fixture
def make_world(app, client, admin, make_school, make_campaign, make_publisher) -> Callable[..., LeadWorld]:
    publishers: list[dict[str, Any]] = []

    def make(delivery: dict[str, Any] | None = None, campaign: dict[str, Any] | None = None,
             school: dict[str, Any] | None = None) -> LeadWorld:  # fmt: skip
        school_overrides = dict(school or {})
        school_overrides["delivery"] = {
            "method": "pull", "format": "json", "field_map": {}, "max_attempts": 3, "timeout_s": 2,
            **(delivery or {}),
        }  # fmt: skip
        made_school = make_school(**school_overrides)
        made_campaign = make_campaign(made_school, **(campaign or {}))
        if not publishers:
            publishers.append(make_publisher())
        key = client.post(f"/v1/schools/{made_school['id']}/keys", headers=admin).get_json()["secret_key"]
        return LeadWorld(app, made_school, made_campaign, publishers[0], key)

    return make


@pytest.fixture
def world(make_world) -> LeadWorld:
    """A pull school (no delivery), a campaign with a lead cap of 20 a day."""
    return make_world()


@pytest.fixture
def http_world(make_world, school_server) -> LeadWorld:
    """A school that takes leads by http_post at the local school server."""
    return make_world({"method": "http_post", "url": school_server.url,
                       "field_map": {"FirstName": "first_name", "Email": "email"}})  # fmt: skip


def submit(client, world: LeadWorld, headers: dict[str, str] | None = None, **overrides: Any) -> str:
    """Submit one of the world's leads (its publisher's secret key unless ``headers``); its id."""
    response = client.post("/v1/leads", json=world.lead(**overrides), headers=headers or world.publisher_headers)
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


@contextmanager
def settled() -> Iterator[None]:
    """Read lists (the lead feed, opt-out notices) as if their settle delay had passed, without waiting for it."""
    from adserver import clock
    from adserver.models.base import utcnow
    from adserver.services.leads.feed import FEED_SETTLE_S

    with clock.frozen(utcnow() + timedelta(seconds=FEED_SETTLE_S + 1)):
        yield


def lead_status(client, admin, lead_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/leads/{lead_id}", headers=admin)
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def deliver_until_settled(app: Flask, client, admin, lead_id: str, timeout_s: float = 20.0) -> dict[str, Any]:
    """Run due delivery jobs in this process until the lead leaves `accepted`, polling with a deadline."""
    from adserver.extensions import db
    from adserver.services.leads.delivery import run_due_jobs

    def settled() -> dict[str, Any] | None:
        with app.app_context():
            run_due_jobs()
            db.session.remove()
        lead = lead_status(client, admin, lead_id)
        return lead if lead["status"] != "accepted" else None

    return dict(wait_for(settled, timeout_s, what=f"lead {lead_id} to settle"))


def wait_for(
    condition: Callable[[], Any], timeout_s: float = 20.0, interval_s: float = 0.05, what: str = "the condition"
) -> Any:
    """Poll until ``condition`` returns something true, and return it; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out waiting for {what}")
