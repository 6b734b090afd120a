"""Raw events past EVENT_RETENTION_DAYS are deleted in batches; no report figure changes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask.testing import FlaskClient
from sqlalchemy import func, select

from adserver import clock
from adserver.extensions import db
from adserver.models import Click, Impression
from adserver.services.reporting import events, retention
from tests.serving.conftest import NOON_PHOENIX

HUMAN = {"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15"}


def _report(client: FlaskClient, admin: dict[str, str]) -> dict[str, Any]:
    response = client.get("/v1/reports", query_string={"from": "2026-01-01", "to": "2026-12-31",
                                                       "group_by": "day,campaign"}, headers=admin)  # fmt: skip
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def _counts(app: Any) -> tuple[int, int]:
    with app.app_context():
        counts = (db.session.scalar(select(func.count()).select_from(Impression)),
                  db.session.scalar(select(func.count()).select_from(Click)))  # fmt: skip
        db.session.remove()
    return int(counts[0] or 0), int(counts[1] or 0)


def test_old_events_go_in_batches_and_the_report_stays_the_same(
    app: Any, client: FlaskClient, admin: dict[str, str], make_school: Any, make_campaign: Any, ads: Any
) -> None:
    make_campaign(make_school(), pricing={"model": "cpc", "bid_cents": 250},
                  budget={"daily_cents": None, "total_cents": None})  # fmt: skip
    # 7 ad requests and their clicks 100 days ago, 2 of each yesterday.
    for days_ago, count in ((100, 7), (1, 2)):
        clock.set_now(NOON_PHOENIX - timedelta(days=days_ago))
        for _ in range(count):
            ad = ads()["ads"][0]
            assert client.get(urlsplit(ad["click_url"]).path, headers=HUMAN).status_code == 302
    clock.set_now(NOON_PHOENIX)
    with app.app_context():
        events.persist_impressions()
        events.persist_clicks()
    before = _report(client, admin)
    assert before["totals"]["impressions"] == 9 and before["totals"]["spend_cents"] == 9 * 250
    assert _counts(app) == (9, 9)

    with app.app_context():
        assert retention.delete_expired_events(batch_size=3) == 14  # 7 + 7, three at a time
        assert retention.delete_expired_events(batch_size=3) == 0
    assert _counts(app) == (2, 2)
    assert _report(client, admin) == before


def test_the_retention_period_is_a_setting(app: Any, make_school: Any, make_campaign: Any, ads: Any) -> None:
    make_campaign(make_school())
    clock.set_now(NOON_PHOENIX - timedelta(days=10))
    ads()
    clock.set_now(NOON_PHOENIX)
    with app.app_context():
        events.persist_impressions()
        assert retention.delete_expired_events() == 0  # within the default 90 days
        app.config["EVENT_RETENTION_DAYS"], saved = 7, app.config["EVENT_RETENTION_DAYS"]
        try:
            assert retention.delete_expired_events() == 1
        finally:
            app.config["EVENT_RETENTION_DAYS"] = saved
