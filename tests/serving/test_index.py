"""Each process's campaign index follows catalog changes, and is built before the first request."""

from __future__ import annotations

import time
from typing import Any

from adserver.services.serving.index import IndexHolder, warm_up


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


def test_a_change_after_redis_lost_its_data_is_not_mistaken_for_the_version_already_built(
    app: Any, make_school: Any, make_campaign: Any
) -> None:
    """Redis losing its data takes the version key with it; the first change after that must still
    read as new to a process that built its index before the loss, however many changes it saw."""
    from adserver.extensions import redis_client

    school = make_school()
    with app.app_context():
        redis_client.client.flushdb()
    first = make_campaign(school)
    holder = IndexHolder(app)
    with app.app_context():
        assert first["id"] in holder.current().by_id
        redis_client.client.flushdb()  # the loss, between two polls of the version
    second = make_campaign(school)
    with app.app_context():
        assert second["id"] in holder.current().by_id
