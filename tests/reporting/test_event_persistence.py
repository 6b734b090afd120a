"""Impressions reach the database in batches, exactly once."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from adserver.extensions import db
from adserver.models import CampaignDailyRollup, DailyRollup, HourlyRollup, Impression
from adserver.services.reporting import events
from adserver.services.serving import counters
from tests.serving.conftest import NOON_PHOENIX


def test_impressions_are_persisted_with_what_reports_need(
    app: Any, make_school: Any, make_campaign: Any, ads: Any, publisher: dict[str, Any]
) -> None:
    school = make_school()
    campaign = make_campaign(school)
    body = ads(visitor_id="v-9", interest="healthcare-administration")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Impression)) == 0  # nothing written on the request
        assert events.persist_impressions() == 1
        row = db.session.get(Impression, body["ads"][0]["impression_id"])
        assert row is not None
        assert (row.request_id, row.publisher_id, row.campaign_id, row.ad_id, row.school_id, row.rank) == (
            body["request_id"], publisher["id"], campaign["id"], campaign["ad"]["id"], school["id"], 1
        )  # fmt: skip
        assert (row.postal_code, row.region, row.interest, row.visitor_id, row.is_bot) == (
            "85004", "AZ", "healthcare-administration", "v-9", False
        )  # fmt: skip
        assert row.at == NOON_PHOENIX and row.pricing_model == "cpl" and row.bid_cents == 4500


def test_a_redelivered_batch_is_not_counted_twice(
    app: Any, make_school: Any, make_campaign: Any, ads: Any, redis_db: Any
) -> None:
    make_campaign(make_school())
    for _ in range(3):
        ads()
    # Entries read by a worker that died before acknowledging them, plus a duplicate of one.
    with app.app_context():
        events._ensure_group(redis_db, counters.IMPRESSION_STREAM)
        read = redis_db.xreadgroup(events.GROUP, "dead-worker", {counters.IMPRESSION_STREAM: ">"}, count=10)
        entries = read[0][1]
        assert len(entries) == 3
        redis_db.xadd(counters.IMPRESSION_STREAM, entries[0][1])
        assert events.persist_impressions() == 1  # the duplicate; the others wait for the reclaim delay
        app.config["EVENT_RECLAIM_IDLE_S"], saved = 0.001, app.config["EVENT_RECLAIM_IDLE_S"]
        try:
            assert events.persist_impressions() == 2  # the three reclaimed; one of them was already stored
        finally:
            app.config["EVENT_RECLAIM_IDLE_S"] = saved
        assert db.session.scalar(select(func.count()).select_from(Impression)) == 3
        assert events.persist_impressions() == 0
        assert redis_db.xlen(counters.IMPRESSION_STREAM) == 0
        ids = {event["id"] for _, fields in entries for event in json.loads(fields[b"a"])}
        assert ids == set(db.session.scalars(select(Impression.id)))
        # Each impression entered every level of the rollups once, with its insert.
        for level in (HourlyRollup, DailyRollup, CampaignDailyRollup):
            assert db.session.scalar(select(func.sum(level.impressions))) == 3
