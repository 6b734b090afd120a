"""Dashboard fixtures: a known mix of traffic made through the public API, sign-in through the
dashboard's own form, and for browser tests the dashboard served by a real gunicorn and driven in
headless Chromium (the system's, from apt) by Playwright.

Browser tests skip, saying why, when /usr/bin/chromium or Playwright is missing. Their screenshots
go to ``test-artifacts/dashboard/`` (git-ignored).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bench.common import ROOT, free_port, start_gunicorn, stop
from tests.conftest import ADMIN_KEY, bearer
from tests.leads.conftest import SchoolServer, Scripted, deliver_until_settled, person, school_server  # noqa: F401

# Headless Chromium says "HeadlessChrome", which the bot rules flag; a visitor's browser does not.
CHROME_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/131.0.0.0 Safari/537.36")  # fmt: skip
SCREENSHOTS = ROOT / "test-artifacts" / "dashboard"
NO_LIMITS = {"budget": {"daily_cents": None, "total_cents": None}, "caps": {"leads_per_day": None}}


@dataclass
class Traffic:
    """Two schools and their campaigns, a publisher, and what was done with them."""

    north: dict[str, Any]  # CPL school, takes leads by http_post
    hollis: dict[str, Any]  # CPC school, pulls its feed
    cpl: dict[str, Any]  # Northbridge's active CPL campaign
    idle: dict[str, Any]  # Northbridge's paused campaign: no traffic at all
    cpc: dict[str, Any]  # Hollis's active CPC campaign
    publisher: dict[str, Any]
    north_key: str
    hollis_key: str
    failed_lead_ids: list[str] = field(default_factory=list)

    @property
    def campaign_ids(self) -> set[str]:
        return {self.cpl["id"], self.idle["id"], self.cpc["id"]}


def _add_to_rollups(app: Flask, day: datetime, campaign: dict[str, Any], publisher_id: str, **figures: int) -> None:
    """Figures of an earlier day, added the way the events worker and intake add theirs."""
    from adserver.extensions import db
    from adserver.services.reporting.rollups import Tally, add_to_rollups, rollup_key

    tally = Tally()
    tally.add(rollup_key(day, campaign["id"], campaign["ad"]["id"], publisher_id, campaign["school_id"]), **figures)
    with app.app_context():
        add_to_rollups(tally)
        db.session.commit()
        db.session.remove()


@pytest.fixture
def traffic(app: Flask, client: FlaskClient, admin: dict[str, str], make_school: Any, make_campaign: Any,
            make_publisher: Any, school_server: SchoolServer) -> Traffic:  # noqa: F811  # fmt: skip
    """Today: ads, human clicks, a repeated click, and leads delivered, rejected, failed and pulled,
    all through the public API; 10 and 45 days ago: larger figures added to the rollups."""
    from adserver.extensions import db
    from adserver.services.reporting import events

    north = make_school(name="Northbridge University", delivery={
        "method": "http_post", "url": school_server.url, "format": "json", "field_map": {}, "max_attempts": 1,
        "timeout_s": 2})  # fmt: skip
    hollis = make_school(name="Hollis Institute", delivery={"method": "pull"})
    cpl = make_campaign(north, name="Fall health admin", pricing={"model": "cpl", "bid_cents": 4500}, **NO_LIMITS)
    idle = make_campaign(north, name="Spring nursing", status="paused", **NO_LIMITS)
    cpc = make_campaign(hollis, name="Evening business", pricing={"model": "cpc", "bid_cents": 300}, **NO_LIMITS)
    publisher = make_publisher()

    def serve() -> dict[str, dict[str, Any]]:
        response = client.get("/v1/ads", query_string={"postal_code": "85004"}, headers=bearer(publisher["secret_key"]))
        assert response.status_code == 200, response.get_json()
        served = {ad["campaign_id"]: ad for ad in response.get_json()["ads"]}
        assert set(served) == {cpl["id"], cpc["id"]}
        return served

    def click(ad: dict[str, Any]) -> None:
        assert client.get(urlsplit(ad["click_url"]).path, headers={"User-Agent": CHROME_UA}).status_code == 302

    def lead(ad: dict[str, Any]) -> str:
        response = client.post("/v1/leads", json={"lead_token": ad["lead_token"], **person()},
                               headers=bearer(publisher["secret_key"]))  # fmt: skip
        assert response.status_code == 201, response.get_json()
        return str(response.get_json()["id"])

    first, second, third = serve(), serve(), serve()
    click(first[cpc["id"]])
    click(first[cpc["id"]])  # the same impression again: redirected, not counted
    click(second[cpc["id"]])
    click(first[cpl["id"]])
    school_server.answer(Scripted(200), Scripted(409, body=b"already in our CRM"), Scripted(503, body=b"CRM down"))
    keys = [client.post(f"/v1/schools/{school['id']}/keys", headers=admin).get_json()["secret_key"]
            for school in (north, hollis)]  # fmt: skip
    traffic = Traffic(north, hollis, cpl, idle, cpc, publisher, north_key=keys[0], hollis_key=keys[1])
    for ad in (first[cpl["id"]], second[cpl["id"]], third[cpl["id"]]):
        settled = deliver_until_settled(app, client, admin, lead(ad))
        if settled["status"] != "delivered":
            traffic.failed_lead_ids.append(settled["id"])
    lead(third[cpc["id"]])  # the pull school's lead: delivered when accepted
    with app.app_context():
        events.persist_impressions()
        events.persist_clicks()
        db.session.remove()

    now = datetime.now(UTC)
    _add_to_rollups(app, now - timedelta(days=10), cpc, publisher["id"], impressions=2_500, clicks=40,
                    spend_cents=12_000)  # fmt: skip
    _add_to_rollups(app, now - timedelta(days=45), cpl, publisher["id"], impressions=1_234_567, clicks=8_910,
                    leads=321, delivered=300, spend_cents=1_350_000)  # fmt: skip
    return traffic


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in(client: FlaskClient, key: str = ADMIN_KEY) -> str:
    """Sign the test client in through the form; returns the page's CSRF token for later forms."""
    token = csrf_token(client.get("/dashboard").get_data(as_text=True))
    response = client.post("/dashboard/sign-in", data={"key": key, "csrf_token": token})
    assert response.status_code == 303, response.get_data(as_text=True)
    return csrf_token(client.get("/dashboard").get_data(as_text=True))


# ---- browser ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard_url(app: Flask) -> Iterator[str]:
    """The app served by gunicorn as `make run` serves it, on the test database and Redis, with a
    strict Content-Security-Policy on its pages (tests/dashboard/strict_csp_app.py)."""
    port = free_port()
    server: subprocess.Popen[bytes] = start_gunicorn("tests.dashboard.strict_csp_app:app", port, workers=2)
    yield f"http://127.0.0.1:{port}"
    stop(server)


class DashboardPage:
    """A browser tab on the dashboard, noting what the browser reports as errors (a CSP violation among them)."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.console_errors: list[str] = []
        page.on("console", lambda message: message.type == "error" and self.console_errors.append(message.text))
        page.on("pageerror", lambda error: self.console_errors.append(str(error)))

    def by_testid(self, testid: str) -> Any:
        return self.page.get_by_test_id(testid)

    def open(self) -> None:
        self.page.goto(f"{self.base_url}/dashboard")

    def sign_in(self, key: str) -> None:
        self.open()
        self.by_testid("login-key").fill(key)
        self.by_testid("login-submit").click()
        self.page.wait_for_load_state()

    def totals(self) -> dict[str, int]:
        """The totals as numbers: "1,234" is 1234, "$1,234.56" is 123456 cents."""
        return {name: _number(self.by_testid(f"total-{name}").inner_text()) for name in
                ("impressions", "clicks", "leads", "spend")}  # fmt: skip

    def campaign_rows(self) -> dict[str, dict[str, str]]:
        """Each campaign row's cells by column, keyed by campaign id."""
        return dict(self.page.eval_on_selector_all(
            "[data-testid=campaign-row]",
            """rows => rows.map(row => [row.dataset.campaignId, Object.fromEntries(
                 [...row.querySelectorAll('[data-column]')]
                   .map(cell => [cell.dataset.column, cell.innerText.trim()]))])""",
        ))  # fmt: skip

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def csp_violations(self) -> list[str]:
        return [text for text in self.console_errors if "Content Security Policy" in text]


def _number(text: str) -> int:
    digits = text.replace(",", "").replace("$", "").replace(".", "").strip()
    assert re.fullmatch(r"-?\d+", digits), f"not a whole number or an amount: {text!r}"
    return int(digits)


@pytest.fixture
def dashboard(browser: Any, dashboard_url: str) -> Iterator[DashboardPage]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, user_agent=CHROME_UA, accept_downloads=True)
    try:
        yield DashboardPage(context.new_page(), dashboard_url)
    finally:
        context.close()
