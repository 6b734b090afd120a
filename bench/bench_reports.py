"""Reports: event ingestion into PostgreSQL with the rollups, and the report over 90 days.

Needs PostgreSQL (``DATABASE_URL``, else ``postgresql://postgres@127.0.0.1:5432/postgres``): it creates
a database of its own and drops it afterwards; Redis is an embedded server in a temporary folder.
Figures, not pass/fail:

(a) ingestion: impressions and clicks queued in Redis the way ad requests and clicks leave them
    (one stream entry per ad request, three impressions each; a click for one impression in 30),
    stored with their rollups by the events worker's code (``persist_impressions``,
    ``persist_clicks``) in two processes, as two worker processes would, until both streams are
    drained; events per second, against a target of at least 20,000.
(b) the report for 90 days grouped by day and campaign over the rollup rows that 10 million
    impressions across 1,000 campaigns and 3 publishers make (270,000 daily rows by campaign, ad
    and publisher, and the 90,000 per day and campaign they sum to, loaded in bulk): the query
    (executed and its 90,000 rows fetched), against a target of 200 ms, and the whole answer
    (query, ratios, totals, JSON), p50 and p95 of 20 runs, in a process whose start-up objects are
    out of the cycle collector's passes, as a web worker's are.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVER_URL = os.environ.get("DATABASE_URL", "").strip() or "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE = f"adserver_bench_reports_{os.getpid()}"

INGESTED_REQUESTS = 60_000  # three impressions each
IMPRESSIONS_PER_ENTRY = 3
CLICK_EVERY = 30
CAMPAIGNS = 1_000
PUBLISHERS = 3
DAYS = 90
REPORT_RUNS = 20


def _database_url(name: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(SERVER_URL.replace("postgres://", "postgresql://", 1)).set(drivername="postgresql+psycopg")
    return url.set(database=name).render_as_string(hide_password=False)


def _admin(sql: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(_database_url("postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(sql))
    engine.dispose()


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def _app():  # type: ignore[no-untyped-def]
    from adserver import create_app

    return create_app()


def _queue_events(app) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    from adserver.extensions import redis_client
    from adserver.services.serving.counters import CLICK_STREAM, IMPRESSION_STREAM

    at = datetime.now(UTC).replace(microsecond=0)
    impressions = clicks = 0
    with app.app_context():
        pipe = redis_client.client.pipeline(transaction=False)
        for n in range(INGESTED_REQUESTS):
            entry = []
            for rank in range(1, IMPRESSIONS_PER_ENTRY + 1):
                campaign = (n * 7 + rank * 131) % CAMPAIGNS
                impression = {
                    "id": f"imp_{n:09d}_{rank}", "request_id": f"req_{n:09d}", "at": at.isoformat(),
                    "publisher_id": f"pub_{n % PUBLISHERS}", "campaign_id": f"cpn_{campaign:06d}",
                    "ad_id": f"ad_{campaign:06d}", "school_id": f"sch_{campaign % 200:04d}", "rank": rank,
                    "pricing_model": "cpc", "bid_cents": 300, "postal_code": "85004", "country": "US",
                    "region": "AZ", "interest": "healthcare-administration", "visitor_id": f"v{n}", "is_bot": False,
                }  # fmt: skip
                entry.append(impression)
                impressions += 1
                if impressions % CLICK_EVERY == 0:
                    click = {"id": f"clk_{impressions:09d}", "impression_id": impression["id"], "at": at.isoformat(),
                             "publisher_id": impression["publisher_id"], "campaign_id": impression["campaign_id"],
                             "ad_id": impression["ad_id"], "school_id": impression["school_id"], "is_bot": False,
                             "counted": True, "spend_cents": 300}  # fmt: skip
                    pipe.xadd(CLICK_STREAM, {"e": json.dumps(click)})
                    clicks += 1
            pipe.xadd(IMPRESSION_STREAM, {"e": json.dumps(entry)})
            if n % 2000 == 1999:
                pipe.execute()
        pipe.execute()
    return impressions, clicks


def _persist_until_drained(_: int) -> None:
    from adserver.extensions import redis_client
    from adserver.services.reporting import events
    from adserver.services.serving.counters import CLICK_STREAM, IMPRESSION_STREAM

    app = _app()
    with app.app_context():
        client = redis_client.client
        while True:
            stored = events.persist_impressions() + events.persist_clicks()
            if not stored and client.xlen(IMPRESSION_STREAM) == 0 and client.xlen(CLICK_STREAM) == 0:
                return


def bench_ingestion(app) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from adserver.extensions import db
    from adserver.models import DailyRollup

    impressions, clicks = _queue_events(app)
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_persist_until_drained, range(2))
    elapsed = time.perf_counter() - started
    with app.app_context():
        counted = db.session.scalar(select(func.sum(DailyRollup.impressions) + func.sum(DailyRollup.clicks)))
    events = impressions + clicks
    print(f"(a) ingestion into PostgreSQL with rollups, 2 processes: {events:,} events "
          f"({impressions:,} impressions, {clicks:,} clicks) in {elapsed:.2f} s = {events / elapsed:,.0f} events/s "
          f"(target at least 20,000); rollups hold {int(counted or 0):,}", flush=True)  # fmt: skip


def _load_rollups(app) -> int:  # type: ignore[no-untyped-def]
    """Daily rows for CAMPAIGNS x PUBLISHERS x DAYS whose impressions add up to about 10 million, and
    their sums per day and campaign."""
    from sqlalchemy import func, select, text

    from adserver.extensions import db
    from adserver.models import DailyRollup
    from adserver.models.rollups import METRICS

    start = date.today() - timedelta(days=DAYS)
    with app.app_context():
        db.session.execute(text("TRUNCATE rollup_daily, rollup_campaign_daily"))
        db.session.execute(text("""
            INSERT INTO rollup_daily (day, campaign_id, ad_id, publisher_id, school_id, impressions, bot_impressions,
                                      clicks, bot_clicks, leads, delivered, rejected, failed, returned, spend_cents)
            SELECT d::date, 'cpn_' || lpad(c::text, 6, '0'), 'ad_' || lpad(c::text, 6, '0'), 'pub_' || p,
                   'sch_' || lpad((c % 200)::text, 4, '0'), i, i / 25, i / 40, i / 400, i / 150, i / 160, 0, 0,
                   i / 1600, (i / 40) * 300
            FROM generate_series(CAST(:start AS date), CAST(:start AS date) + :days - 1, interval '1 day') AS d,
                 generate_series(1, :campaigns) AS c, generate_series(1, :publishers) AS p,
                 LATERAL (SELECT 30 + ((c * 7 + p * 13 + extract(doy FROM d)::int) % 15) AS i) AS row_size
        """), {"start": start, "days": DAYS, "campaigns": CAMPAIGNS, "publishers": PUBLISHERS})  # fmt: skip
        sums = ", ".join(f"SUM({name})" for name in METRICS)
        db.session.execute(text(f"""
            INSERT INTO rollup_campaign_daily (day, campaign_id, school_id, {", ".join(METRICS)})
            SELECT day, campaign_id, MAX(school_id), {sums} FROM rollup_daily GROUP BY day, campaign_id
        """))  # fmt: skip
        db.session.commit()
        # What autovacuum does after a bulk load: statistics, and the visibility map that lets the
        # key's index answer without the table.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE rollup_daily, rollup_campaign_daily")
        return int(db.session.scalar(select(func.sum(DailyRollup.impressions))) or 0)


def bench_report(app) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from adserver.extensions import db
    from adserver.models import CampaignDailyRollup, DailyRollup
    from adserver.schemas.reports import ReportQuery
    from adserver.services.reporting.reports import Scope, build_report, fetch_groups, report_json

    total = _load_rollups(app)
    gc.freeze()  # as a web worker does once started (config/gunicorn.conf.py)
    end = date.today() - timedelta(days=1)
    query = ReportQuery.model_validate({"from": end - timedelta(days=DAYS - 1), "to": end, "group_by": "day,campaign"})
    with app.app_context():
        rows, summed = (db.session.scalar(select(func.count()).select_from(level))
                        for level in (DailyRollup, CampaignDailyRollup))  # fmt: skip
        query_times, answer_times = [], []
        for _ in range(REPORT_RUNS + 1):  # the first run warms the caches and is not counted
            started = time.perf_counter()
            fetch_groups(query, Scope())
            query_times.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            report = build_report(query, Scope())
            body = report_json(report)
            answer_times.append((time.perf_counter() - started) * 1000)
    query_times, answer_times = query_times[1:], answer_times[1:]
    print(
        f"(b) report, 90 days by day and campaign: {total:,} impressions in {rows:,} daily rows "
        f"(by campaign, ad and publisher; {summed:,} per day and campaign), {len(report.rows):,} report rows "
        f"({len(body) / 1e6:.1f} MB of JSON), {REPORT_RUNS} runs:",
        flush=True,
    )
    print(f"  the query (rows fetched): p50 {_percentile(query_times, 50):7.1f} ms"
          f"  p95 {_percentile(query_times, 95):7.1f} ms  (target under 200 ms)", flush=True)  # fmt: skip
    print(f"  the whole answer (query, ratios, totals, JSON): p50 {_percentile(answer_times, 50):7.1f} ms"
          f"  p95 {_percentile(answer_times, 95):7.1f} ms", flush=True)  # fmt: skip


def main() -> int:
    try:
        _admin(f'CREATE DATABASE "{DATABASE}"')
    except Exception as exc:
        print(f"skipped: no PostgreSQL at {SERVER_URL} ({type(exc).__name__})")
        return 0
    # Made here, not at import: the ingestion processes import this module too.
    workdir = Path(tempfile.mkdtemp(prefix="adserver-bench-reports-"))
    os.environ.update({
        "DATABASE_URL": _database_url(DATABASE), "INSTANCE_DIR": str(workdir / "instance"),
        "SECRET_KEY": "bench-secret-key-0123456789abcdef", "ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "LOG_LEVEL": "WARNING",
    })  # fmt: skip
    os.environ.pop("REDIS_URL", None)  # the embedded Redis under INSTANCE_DIR
    from flask_migrate import upgrade

    from adserver import embedded_redis
    from config.settings import load_settings

    try:
        app = _app()
        with app.app_context():
            upgrade()
        bench_ingestion(app)
        bench_report(app)
        with app.app_context():
            from adserver.extensions import db

            db.engine.dispose()
    finally:
        embedded_redis.stop(load_settings().embedded_redis_socket)
        _admin(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
