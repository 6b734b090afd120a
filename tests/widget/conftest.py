"""Browser fixtures: the app under a real gunicorn, a second local origin serving publisher pages
(with hostile CSS and a strict Content-Security-Policy), and headless Chromium from apt driven by
Playwright. Without /usr/bin/chromium every browser test is skipped with the reason."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask

from bench.common import CHROME_USER_AGENT, CHROMIUM, ROOT, free_port, start_gunicorn, stop
from tests.conftest import ADMIN_KEY
from tests.leads.conftest import school_server  # noqa: F401 (the school endpoint, for these tests too)

# Screenshots the browser tests save (git-ignored).
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
LOCAL = re.compile(r"^https?://(127\.0\.0\.1|localhost)(:\d+)?/")

HOSTILE_CSS = """
* { display: inline !important; color: red !important; font: 30px/1 serif !important;
    box-sizing: content-box !important; letter-spacing: 3px !important; text-transform: uppercase !important; }
html, body { visibility: visible !important; }
div, section, form, input, select, button, li, ul, ol, p, a, h2, h3, label {
    all: unset !important; display: inline !important; border: 4px dashed red !important; }
script { display: none !important; }
"""


def _skip_without_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need headless Chromium at {CHROMIUM} (apt-get install -y chromium)")


@dataclass
class Site:
    """A second local origin (another port) serving publisher pages and landing pages."""

    pages: dict[str, tuple[str, str, dict[str, str]]] = field(default_factory=dict)
    httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.httpd is not None
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def add(self, path: str, body: str, content_type: str = "text/html", headers: dict[str, str] | None = None) -> str:
        self.pages[path] = (body, content_type, headers or {})
        return self.url + path

    def start(self) -> None:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                found = site.pages.get(urlsplit(self.path).path)
                body, content_type, headers = found or ("not found", "text/plain", {})
                data = body.encode()
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", f"{content_type}; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    running = Site()
    running.start()
    yield running
    running.stop()


@dataclass
class Server:
    """gunicorn serving the app on the test database and Redis."""

    url: str

    def admin_get(self, path: str, **params: Any) -> Any:
        response = requests.get(self.url + path, params=params, timeout=30,
                                headers={"Authorization": f"Bearer {ADMIN_KEY}"})  # fmt: skip
        assert response.status_code == 200, response.text
        return response.json()

    def serving_order(self, postal_code: str, **params: Any) -> list[str]:
        """The eligible campaigns, best first, as ranking scores them (explain counts no impression)."""
        explained = self.admin_get("/v1/ads/explain", postal_code=postal_code, **params)["campaigns"]
        eligible = [c for c in explained if c["eligible"]]
        return [c["campaign_id"] for c in sorted(eligible, key=lambda c: -c["score"])]

    def wait_for_campaigns(self, campaign_ids: set[str], timeout_s: float = 20.0) -> None:
        """Until this server's campaign index holds the catalog the test just wrote."""
        from tests.leads.conftest import wait_for

        def indexed() -> set[str]:
            explained = self.admin_get("/v1/ads/explain", postal_code="10001")["campaigns"]
            return {c["campaign_id"] for c in explained}

        wait_for(lambda: campaign_ids <= indexed(), timeout_s, what="the server's index to hold the new campaigns")


@pytest.fixture
def server(app: Flask) -> Iterator[Server]:
    """A fresh gunicorn for each test: its key cache and campaign index start empty, like the test's data.
    One worker, so each request sees the same index."""
    _skip_without_chromium()
    port = free_port()
    process = start_gunicorn("wsgi:app", port, env={"PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}, workers=1)
    yield Server(f"http://127.0.0.1:{port}")
    stop(process)


@dataclass
class Visit:
    """One browser context: its page, the errors its console printed, and its screenshots."""

    context: Any
    page: Any
    console_errors: list[str]
    name: str

    def screenshots(self, label: str) -> list[Path]:
        """The page at 1280 and at 360 pixels wide, saved under test-artifacts/screenshots/."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        saved = []
        for width in (1280, 360):
            self.page.set_viewport_size({"width": width, "height": 900})
            path = SCREENSHOTS / f"{self.name}-{label}-{width}.png"
            self.page.screenshot(path=str(path), full_page=True)
            saved.append(path)
        self.page.set_viewport_size({"width": 1280, "height": 900})
        return saved


@pytest.fixture
def visit(browser: Any, request: pytest.FixtureRequest) -> Iterator[Callable[..., Visit]]:
    contexts: list[Any] = []

    def open_page(url: str, width: int = 1280) -> Visit:
        context = browser.new_context(viewport={"width": width, "height": 900}, user_agent=CHROME_USER_AGENT)
        # Nothing may leave the machine: the demo schools' logos (on sites that do not exist) are not fetched.
        context.route(lambda url: not LOCAL.match(url), lambda route: route.abort())
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url)
        return Visit(context, page, errors, request.node.name.replace("[", "-").replace("]", ""))

    yield open_page
    for context in contexts:
        context.close()


def hostile_page(site: Site, server: Server, key: str, **data: str) -> str:
    """A publisher page on the second origin: hostile CSS, a strict CSP, and the widget embedded in a container."""
    attributes = " ".join(f'data-{name.replace("_", "-")}="{value}"' for name, value in data.items())
    site.add("/hostile.css", HOSTILE_CSS, "text/css")
    csp = (f"default-src 'self'; script-src 'self' {server.url}; style-src 'self'; connect-src {server.url}; "
           "img-src *; object-src 'none'; base-uri 'none'")  # fmt: skip
    return site.add("/article", f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>A hostile publisher page</title><link rel="stylesheet" href="/hostile.css"></head>
<body><h1>Careers in health care</h1><p id="page-text">The publisher's own paragraph.</p>
<div id="school-box"></div>
<script src="{server.url}/widget.js" data-key="{key}" data-target="school-box" {attributes} async></script>
</body></html>""", headers={"Content-Security-Policy": csp})  # fmt: skip


def click_events(app: Flask) -> list[dict[str, Any]]:
    """Every click the servers published, in order."""
    from adserver.extensions import redis_client
    from adserver.services.reporting.events import entry_events
    from adserver.services.serving.counters import CLICK_STREAM

    with app.app_context():
        return [event for _, fields in redis_client.client.xrange(CLICK_STREAM) for event in entry_events(fields)]
