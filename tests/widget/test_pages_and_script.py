"""The widget script as a publisher's page fetches it, and the server's own pages: the front door,
the API reference and the demo article, each working under a strict Content-Security-Policy."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[2]
WIDGET_LIMIT_BYTES = 30 * 1024


class _Page(HTMLParser):
    """The links, scripts and inline styles of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "a" and found.get("href"):
            self.links.append(str(found["href"]))
        if tag == "script":
            self.scripts.append(found)
            self._in_script = True
        if tag == "style" or "style" in found or any(name.startswith("on") for name in found):
            self.inline.append(tag)

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("script body")


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def seed_demo(app: Flask) -> None:
    from adserver.demo import seed_demo_catalog

    with app.app_context():
        list(seed_demo_catalog())


def test_the_widget_script_is_small_cached_and_revalidated(client: FlaskClient) -> None:
    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert len(response.data) < WIDGET_LIMIT_BYTES
    assert "max-age=3600" in response.headers["Cache-Control"]
    etag = response.headers["ETag"]
    again = client.get("/widget.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""

    digest = etag.strip('"')
    versioned = client.get(f"/widget.{digest}.js")
    assert versioned.data == response.data
    assert versioned.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    older = client.get("/widget.0000000000000000.js")
    assert older.data == response.data and "immutable" not in older.headers["Cache-Control"]


def test_the_widget_needs_nothing_from_elsewhere() -> None:
    source = (ROOT / "adserver" / "widget" / "static" / "widget.js").read_text()
    assert not re.search(r"\b(import|require)\s*\(", source)
    assert "innerHTML" not in source and "eval(" not in source and "new Function" not in source
    assert 'attachShadow({ mode: "open" })' in source and "adoptedStyleSheets" in source


def test_the_front_door_links_the_demo_the_dashboard_and_the_reference(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    links = parse(response.get_data(as_text=True)).links
    assert {"/demo/medical-office-manager", "/dashboard", "/docs"} <= set(links)


def test_the_api_reference_is_swagger_ui_served_from_here(client: FlaskClient) -> None:
    page = parse(client.get("/docs").get_data(as_text=True))
    sources = [str(script["src"]) for script in page.scripts]
    assert all(src.startswith("/static/pages/") for src in sources)
    assert any(src.endswith("swagger-ui-bundle.js") for src in sources)
    for src in sources:
        assert client.get(src).status_code == 200
    vendored = ROOT / "adserver" / "pages" / "static" / "vendor" / "swagger-ui"
    assert "Apache License" in (vendored / "LICENSE").read_text()


def test_every_page_works_under_a_strict_content_security_policy(app: Flask, client: FlaskClient) -> None:
    seed_demo(app)
    for path in ("/", "/docs", "/demo/medical-office-manager"):
        response = client.get(path)
        assert response.status_code == 200, path
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe-inline" not in policy
        page = parse(response.get_data(as_text=True))
        assert page.inline == [], f"{path} has inline script, style or handlers: {page.inline}"
        assert all(script.get("src") for script in page.scripts), path


def test_the_demo_article_embeds_a_key_that_works_from_the_demo_publishers_domains(
    app: Flask, client: FlaskClient
) -> None:
    assert client.get("/demo/medical-office-manager").status_code == 404  # not seeded yet: says how
    seed_demo(app)
    seed_demo(app)  # the seed runs at every `make run`: the key is registered once
    html = client.get("/demo/medical-office-manager?postal_code=33620").get_data(as_text=True)
    (script,) = [s for s in parse(html).scripts if s.get("data-key")]
    assert str(script["src"]).startswith("/widget.") and script["data-postal-code"] == "33620"
    key = str(script["data-key"])
    assert key.startswith("pk_")
    answer = client.get(f"/v1/ads?postal_code=33620&interest=medical-office-management&key={key}",
                        headers={"Origin": "http://localhost:8000"})  # fmt: skip
    assert answer.status_code == 200 and answer.get_json()["count"] == 3
    refused = client.get(f"/v1/ads?postal_code=33620&key={key}", headers={"Origin": "https://elsewhere.example"})
    assert refused.status_code == 403

    from adserver.auth import hash_key
    from adserver.extensions import db
    from adserver.models import ApiKey

    with app.app_context():
        assert db.session.query(ApiKey).filter_by(key_hash=hash_key(key)).count() == 1
        db.session.remove()


def test_the_demo_article_ignores_a_postal_code_that_is_not_one(app: Flask, client: FlaskClient) -> None:
    seed_demo(app)
    html = client.get('/demo/medical-office-manager?postal_code="><b>x').get_data(as_text=True)
    (script,) = [s for s in parse(html).scripts if s.get("data-key")]
    assert "data-postal-code" not in script


def test_demo_leads_stay_on_this_machine(app: Flask) -> None:
    from adserver.demo import DEMO_SCHOOLS

    assert all(entry["school"].get("delivery", {}).get("method", "pull") == "pull" for entry in DEMO_SCHOOLS)


def test_the_demo_publisher_may_show_the_widget_on_this_servers_own_host(app: Flask) -> None:
    from adserver.demo import DEMO_PUBLISHER
    from adserver.extensions import db
    from adserver.models import Publisher

    seed_demo(app)
    before = app.config["PUBLIC_BASE_URL"]
    app.config["PUBLIC_BASE_URL"] = "https://ads.example.org"
    try:
        seed_demo(app)
    finally:
        app.config["PUBLIC_BASE_URL"] = before
    with app.app_context():
        publisher = db.session.scalars(select(Publisher).where(Publisher.name == DEMO_PUBLISHER["name"])).one()
        assert set(publisher.domains) == {*DEMO_PUBLISHER["domains"], "ads.example.org"}
        db.session.remove()
