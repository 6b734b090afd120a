"""The demo's traffic goes through the same code as real traffic: its report matches its rows."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select

from adserver.demo import seed_demo_catalog
from adserver.demo_traffic import seed_demo_traffic
from adserver.extensions import db
from adserver.models import Click, Impression, Lead


def test_demo_traffic_is_reported_as_recorded_and_seeded_once(app: Any, client: FlaskClient,
                                                               admin: dict[str, str]) -> None:  # fmt: skip
    with app.app_context():
        list(seed_demo_catalog())
        lines = list(seed_demo_traffic(days=3))
        assert lines[-1].startswith("traffic added: 3 days")
        assert list(seed_demo_traffic(days=3)) == ["traffic exists: nothing added"]
        impressions = db.session.scalar(select(func.count()).select_from(Impression).where(~Impression.is_bot))
        clicks = db.session.scalar(select(func.count()).select_from(Click).where(Click.counted))
        spend = db.session.scalar(select(func.sum(Click.spend_cents)))
        leads = db.session.scalar(select(func.count()).select_from(Lead))
        returned = db.session.scalar(select(func.count()).select_from(Lead).where(Lead.status == "returned"))
        kept_cpl = db.session.scalar(select(func.sum(Lead.price_cents)).where(Lead.status != "returned"))
    response = client.get("/v1/reports", query_string={"from": "2026-01-01", "to": "2026-12-31"}, headers=admin)
    totals = response.get_json()["totals"]
    assert impressions and clicks and leads
    assert (totals["impressions"], totals["clicks"], totals["leads"], totals["returned"]) == (
        impressions, clicks, leads, returned)  # fmt: skip
    assert totals["spend_cents"] == (spend or 0) + (kept_cpl or 0)
