"""Impressions reach the database in batches, exactly once; each process's index follows catalog changes."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import func, select

from adserver.extensions import db
from adserver.models import Impression
from adserver.services import counters, events
from adserver.services.index import IndexHolder, warm_up
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
        events.RECLAIM_IDLE_MS, saved = 0, events.RECLAIM_IDLE_MS
        try:
            assert events.persist_impressions() == 3
        finally:
            events.RECLAIM_IDLE_MS = saved
        assert db.session.scalar(select(func.count()).select_from(Impression)) == 3
        assert events.persist_impressions() == 0
        assert redis_db.xlen(counters.IMPRESSION_STREAM) == 0
        ids = {event["id"] for _, fields in entries for event in json.loads(fields[b"e"])}
        assert ids == set(db.session.scalars(select(Impression.id)))


def test_a_running_process_picks_up_catalog_changes_within_two_seconds(
    app: Any, client: Any, admin: dict[str, str], make_school: Any, make_campaign: Any
) -> None:
    campaign = make_campaign(make_school())
    holder = IndexHolder(app)
    app.testing = False  # serve like production: the background watcher, not a check per request
    try:
        with app.app_context():
            assert holder.current().by_id[campaign["id"]].status == "active"
        client.patch(f"/v1/campaigns/{campaign['id']}", json={"status": "paused"}, headers=admin)
        deadline = time.monotonic() + 2.0
        while True:
            with app.app_context():
                if holder.current().by_id[campaign["id"]].status == "paused":
                    break
            assert time.monotonic() < deadline, "the index did not refresh within 2 seconds"
            time.sleep(0.05)
    finally:
        app.testing = True
        holder.stop()


def test_warming_up_builds_the_index_before_any_request(app: Any, make_school: Any, make_campaign: Any) -> None:
    """What gunicorn's post_worker_init does for each worker (config/gunicorn.conf.py)."""
    campaign = make_campaign(make_school())
    holder = IndexHolder(app)
    previous, app.extensions["campaign_index"] = app.extensions["campaign_index"], holder
    app.testing = False
    try:
        assert holder._index is None
        warm_up(app)
        assert holder._index is not None and campaign["id"] in holder._index.by_id
        with app.app_context():
            assert holder.current() is holder._index  # the first request finds it built
    finally:
        app.testing = True
        holder.stop()
        app.extensions["campaign_index"] = previous


def test_a_failed_warm_up_leaves_the_build_to_the_first_request(app: Any, make_school: Any, make_campaign: Any) -> None:
    """A worker whose database is not reachable at start must still start (gunicorn stops the whole
    server when a worker fails to boot)."""
    from dataclasses import replace

    from adserver import create_app
    from config.settings import load_settings

    broken = create_app(replace(load_settings(), database_url="postgresql+psycopg://nobody@127.0.0.1:1/none"))
    broken.testing = False
    try:
        warm_up(broken)  # logs, does not raise
        assert broken.extensions["campaign_index"]._index is None
    finally:
        broken.extensions["campaign_index"].stop()
        broken.testing = True
