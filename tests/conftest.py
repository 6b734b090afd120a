"""Test fixtures on real parts: the configured (or an embedded) database and Redis.

With ``DATABASE_URL`` pointing at PostgreSQL the suite creates its own
database beside it (``<name>_adserver_tests``) and drops it at the end; with
``REDIS_URL`` it uses database 15 of that server. Unset, it uses a SQLite file
and an embedded Redis in a temporary folder. Every test starts from empty
tables and an empty Redis database.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

ADMIN_KEY = "sk_test_admin_0123456789abcdef"
METRICS_TOKEN = "metrics-token-for-tests-0123456789"
_TMP = Path(tempfile.mkdtemp(prefix="adserver-tests-"))


# The session's folder (SQLite file, embedded Redis socket, instance files) goes with the process: atexit
# handlers run last-registered first, so this one runs after those registered later (the batchers' flush).
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)


def _test_database_url() -> tuple[str, str | None]:
    """The database the suite uses, and the server-level URL to drop it with afterwards."""
    configured = os.environ.get("DATABASE_URL", "").strip()
    if not configured or configured.startswith("sqlite"):
        return f"sqlite:///{_TMP / 'test.db'}", None
    url = make_url(configured.replace("postgres://", "postgresql://", 1)).set(drivername="postgresql+psycopg")
    # One database per test session, so concurrent sessions never share tables.
    name = f"{url.database or 'postgres'}_adserver_tests_{os.getpid()}"
    admin_url = url.set(database="postgres")
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False), admin_url.render_as_string(hide_password=False)


def _test_redis_url() -> str | None:
    """Database TEST_REDIS_DB (default 15) of the configured Redis, or None for the embedded Redis."""
    configured = os.environ.get("REDIS_URL", "").strip()
    if not configured:
        return None
    parts = urlsplit(configured)
    number = os.environ.get("TEST_REDIS_DB", "15")
    if parts.scheme == "unix":
        return urlunsplit(parts._replace(query=f"db={number}"))
    return urlunsplit(parts._replace(path=f"/{number}"))


_DATABASE_URL, _DROP_WITH = _test_database_url()
_REDIS_URL = _test_redis_url()
# The environment is set before the app is built so subprocesses (gunicorn, Celery) see the same values.
os.environ.update(
    {
        "DATABASE_URL": _DATABASE_URL,
        "SECRET_KEY": "test-secret-key-0123456789abcdef",
        "ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "ADMIN_API_KEY": ADMIN_KEY,
        "METRICS_TOKEN": METRICS_TOKEN,
        "INSTANCE_DIR": str(_TMP / "instance"),
        "PUBLIC_BASE_URL": "http://localhost:8000",
        "DELIVERY_URL_ALLOWLIST": "127.0.0.1,localhost",
        "DELIVERY_RETRY_BASE_S": "0.2",
    }
)
if _REDIS_URL:
    os.environ["REDIS_URL"] = _REDIS_URL
else:
    os.environ.pop("REDIS_URL", None)


@pytest.fixture(scope="session")
def app() -> Iterator[Flask]:
    from flask_migrate import upgrade

    from adserver import create_app
    from config.settings import load_settings

    settings = load_settings()
    application = create_app(settings)
    application.config["TESTING"] = True
    with application.app_context():
        upgrade()
    yield application
    with application.app_context():
        from adserver.extensions import db

        db.session.remove()
        db.engine.dispose()
    if settings.embedded_redis:
        from adserver import embedded_redis

        embedded_redis.stop(settings.embedded_redis_socket)
    if _DROP_WITH:
        engine = create_engine(_DROP_WITH, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(_DATABASE_URL).database}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture(autouse=True)
def clean_state(request: pytest.FixtureRequest) -> Iterator[None]:
    """Empty every table and the Redis database before each test that uses the app."""
    if "app" not in request.fixturenames:
        yield
        return
    app: Flask = request.getfixturevalue("app")
    from adserver.auth import clear_key_cache
    from adserver.extensions import db, redis_client
    from adserver.models import Base
    from adserver.services.leads.intake import ACCEPTED_LEADS

    app.extensions[ACCEPTED_LEADS].flush()  # a lead's counts from the test before must not land in this one
    with app.app_context():
        db.session.remove()
        tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
        for attempt in range(5):
            try:
                with db.engine.begin() as conn:
                    if conn.dialect.name == "postgresql":
                        conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))
                    else:
                        for table in tables:
                            conn.execute(text(f'DELETE FROM "{table}"'))
                break
            except OperationalError:
                # A live server of a module fixture (gunicorn) may be rebuilding its campaign index,
                # reading the tables one by one: PostgreSQL can pick the TRUNCATE as a deadlock victim.
                if attempt == 4:
                    raise
        redis_client.client.flushdb()
        clear_key_cache()
    for reset in app.extensions.get("test_resets", []):
        reset()
    yield


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium for the widget's and the dashboard's browser tests: one per session, since
    Playwright runs one driver per process. Skipped, saying why, without /usr/bin/chromium."""
    from bench.common import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need headless Chromium at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def school_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Example University",
        "website": "https://example.edu",
        "logo_url": "https://example.edu/logo.png",
        "timezone": "America/Phoenix",
        "campuses": [{"name": "Tempe", "postal_code": "85281", "country": "US"}],
        "programs": [
            {
                "name": "BS Health Care Administration",
                "interest": "healthcare-administration",
                "degree_level": "bachelor",
                "modality": "online",
            }
        ],
        "delivery": {
            "method": "http_post",
            "url": "https://crm.example.edu/leads",
            "format": "json",
            "field_map": {"FirstName": "first_name", "Email": "email"},
            "max_attempts": 8,
            "timeout_s": 10,
        },
    }
    body.update(overrides)
    return body


def campaign_body(school_id: str, program_ids: list[str], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "school_id": school_id,
        "name": "Fall health admin",
        "status": "active",
        "pricing": {"model": "cpl", "bid_cents": 4500},
        "budget": {"daily_cents": 100000, "total_cents": None},
        "caps": {"leads_per_day": 20, "leads_per_month": None},
        "flight": {"start": "2026-01-01", "end": None, "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                   "hours": [0, 24]},
        "targeting": {"interests": ["healthcare-administration"], "degree_levels": ["bachelor"],
                      "modalities": ["online"], "countries": ["US"], "regions": [], "exclude_regions": [],
                      "postal_codes": [], "radius_miles": None},
        "eligibility": {"min_education": "high_school", "min_age": 18, "graduation_year_max": None,
                        "requires_rn_license": False, "military_only": False},
        "publishers": {"allow": [], "deny": []},
        "frequency_cap": {"impressions_per_day": None},
        "program_ids": program_ids,
    }  # fmt: skip
    body.update(overrides)
    return body


AD_BODY = {
    "headline": "Ranked among the best online bachelor's programs",
    "bullets": ["Try classes before paying tuition", "Average class size of 18"],
    "tags": ["Online Courses", "Financial Aid"],
    "badge": "Good for Working Adults",
    "landing_url": "https://example.edu/health-admin",
    "status": "active",
}


@pytest.fixture
def make_school(client: FlaskClient, admin: dict[str, str]) -> Any:
    def make(**overrides: Any) -> dict[str, Any]:
        response = client.post("/v1/schools", json=school_body(**overrides), headers=admin)
        assert response.status_code == 201, response.get_json()
        return dict(response.get_json())

    return make


@pytest.fixture
def make_campaign(client: FlaskClient, admin: dict[str, str]) -> Any:
    def make(school: dict[str, Any], *, with_ad: bool = True, **overrides: Any) -> dict[str, Any]:
        program_ids = [p["id"] for p in school["programs"]]
        response = client.post("/v1/campaigns", json=campaign_body(school["id"], program_ids, **overrides),
                               headers=admin)  # fmt: skip
        assert response.status_code == 201, response.get_json()
        campaign = dict(response.get_json())
        if with_ad:
            ad = client.post(f"/v1/campaigns/{campaign['id']}/ads", json=AD_BODY, headers=admin)
            assert ad.status_code == 201, ad.get_json()
            campaign["ad"] = ad.get_json()
        return campaign

    return make


@pytest.fixture
def make_publisher(client: FlaskClient, admin: dict[str, str]) -> Any:
    def make(name: str = "Career Guides", domains: list[str] | None = None) -> dict[str, Any]:
        body = {"name": name, "domains": domains if domains is not None else ["careerguides.example"]}
        response = client.post("/v1/publishers", json=body, headers=admin)
        assert response.status_code == 201, response.get_json()
        return dict(response.get_json())

    return make
