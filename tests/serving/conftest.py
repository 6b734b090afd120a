"""Serving fixtures: a publisher with both keys, a pinned clock, and helpers to ask for ads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from adserver import clock
from tests.conftest import bearer

# A Thursday, 12:00 in Phoenix (UTC-7 all year, no daylight saving time).
NOON_PHOENIX = datetime(2026, 11, 26, 19, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[None]:
    clock.set_now(NOON_PHOENIX)
    yield
    clock.set_now(None)


@pytest.fixture
def publisher(make_publisher: Any) -> dict[str, Any]:
    return dict(make_publisher())


@pytest.fixture
def ads(client: FlaskClient, publisher: dict[str, Any]) -> Any:
    """GET /v1/ads with the publisher's secret key; returns the JSON body of a 200."""

    def ask(expect: int = 200, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
        params.setdefault("postal_code", "85004")
        response = client.get("/v1/ads", query_string=params, headers=headers or bearer(publisher["secret_key"]))
        assert response.status_code == expect, response.get_json()
        return dict(response.get_json())

    return ask


@pytest.fixture
def explain(client: FlaskClient, admin: dict[str, str]) -> Any:
    """GET /v1/ads/explain; returns {campaign_id: excluded_by or "eligible"}."""

    def ask(**params: Any) -> dict[str, str]:
        params.setdefault("postal_code", "85004")
        response = client.get("/v1/ads/explain", query_string=params, headers=admin)
        assert response.status_code == 200, response.get_json()
        return {c["campaign_id"]: c["excluded_by"] or "eligible" for c in response.get_json()["campaigns"]}

    return ask


@pytest.fixture
def redis_db(app: Flask) -> Any:
    from adserver.extensions import redis_client

    with app.app_context():
        yield redis_client.client


def served_ids(body: dict[str, Any]) -> list[str]:
    return [ad["campaign_id"] for ad in body["ads"]]


def set_spend(redis_db: Any, campaign_id: str, *, day: str | None = None, day_cents: int | None = None,
              total_cents: int | None = None) -> None:  # fmt: skip
    """Put a campaign's spend in its money hash, as clicks and leads would have."""
    from adserver.services.serving import counters

    fields: dict[str, Any] = {"ok": "1"}
    if day_cents is not None:
        assert day is not None
        fields.update({"sd": day_cents, "sd@": day})
    if total_cents is not None:
        fields["st"] = total_cents
    redis_db.hset(counters.money_key(campaign_id), mapping=fields)


def submit_lead(app: Flask, client: FlaskClient, publisher: dict[str, Any], ad: dict[str, Any]) -> Any:
    """POST /v1/leads for a served ad, from a new visitor; the counts intake sends to Redis after
    its commits are sent before it returns."""
    from adserver.services.leads.intake import ACCEPTED_LEADS
    from tests.leads.conftest import person

    consent = {"granted": True, "text": ad["consent_text"], "page_url": "https://careerguides.example/a"}
    body = {**person(), "lead_token": ad["lead_token"], "consent": consent}
    response = client.post("/v1/leads", json=body, headers=bearer(publisher["secret_key"]))
    app.extensions[ACCEPTED_LEADS].flush()
    return response
