"""Migrations, OpenAPI, health checks, settings and operator commands."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from config.settings import ConfigError, load_settings

ROOT = Path(__file__).resolve().parent.parent


def test_alembic_has_exactly_one_head():
    config = Config()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    heads = ScriptDirectory.from_config(config).get_heads()
    assert len(heads) == 1, f"several migration heads: {heads}"


def test_the_migrated_schema_matches_the_models(app):
    from adserver.extensions import db

    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def _insert(connection: sqlite3.Connection, table: str, values: dict[str, object]) -> None:
    """A row with the given values and a placeholder in every other NOT NULL column."""
    placeholders = {"INTEGER": 0, "BOOLEAN": 0, "DATETIME": "2026-11-01 00:00:00.000000"}
    row = dict(values)
    for _cid, name, type_, not_null, _default, _pk in connection.execute(f"PRAGMA table_info({table})"):
        if not_null and name not in row:
            row[name] = placeholders.get(type_, "x")
    connection.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                       list(row.values()))  # fmt: skip


def test_migration_0003_moves_each_delivery_job_into_its_lead_and_back(app, tmp_path):
    """Upgrading keeps every job's state, attempts, next attempt and claim; downgrading restores the
    job rows (SQLite file of its own; the same SQL was checked on PostgreSQL). ``app`` is the session's,
    which owns the embedded Redis the app made here shares."""
    from dataclasses import replace

    from flask_migrate import downgrade, upgrade

    from adserver import create_app
    from adserver.extensions import db

    path = tmp_path / "migrations.db"
    app = create_app(replace(load_settings(), database_url=f"sqlite:///{path}"))
    job = ("pending", 2, "2026-11-27 09:00:00.000000", "worker-1", "2026-11-27 09:01:00.000000")
    with app.app_context():
        upgrade(revision="0002")
        db.engine.dispose()
        with closing(sqlite3.connect(path)) as connection, connection:  # no foreign keys: no catalog needed
            _insert(connection, "leads", {"id": "lead_00000000000000000000000001"})
            _insert(connection, "leads", {"id": "lead_00000000000000000000000002"})  # a pull school's
            _insert(
                connection,
                "delivery_jobs",
                dict(
                    zip(
                        ("id", "lead_id", "state", "attempts", "next_attempt_at", "claimed_by", "claimed_until"),
                        ("job_00000000000000000000000001", "lead_00000000000000000000000001", *job),
                        strict=True,
                    )
                ),
            )
        upgrade()
        db.engine.dispose()
        with closing(sqlite3.connect(path)) as connection:
            leads = connection.execute("SELECT id, delivery_state, attempt_count, next_attempt_at, claimed_by,"
                                       " claimed_until FROM leads ORDER BY id").fetchall()  # fmt: skip
            assert "delivery_jobs" not in {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        assert leads == [("lead_00000000000000000000000001", *job),
                         ("lead_00000000000000000000000002", None, 0, None, None, None)]  # fmt: skip
        downgrade(revision="0002")
        db.engine.dispose()
        with closing(sqlite3.connect(path)) as connection:
            jobs = connection.execute("SELECT id, lead_id, state, attempts, next_attempt_at, claimed_by,"
                                      " claimed_until FROM delivery_jobs").fetchall()  # fmt: skip
            columns = {row[1] for row in connection.execute("PRAGMA table_info(leads)")}
    assert jobs == [("job_00000000000000000000000001", "lead_00000000000000000000000001", *job)]
    assert "delivery_state" not in columns


def test_migration_0004_rolls_up_what_was_recorded_before_it(app, tmp_path):
    """Impressions, clicks and leads recorded before the rollups existed are in the report after
    upgrading: events by their time, leads by the time they were accepted."""
    from dataclasses import replace

    from flask_migrate import downgrade, upgrade

    from adserver import create_app
    from adserver.extensions import db

    path = tmp_path / "migrations.db"
    app = create_app(replace(load_settings(), database_url=f"sqlite:///{path}"))
    at = "2026-11-26 19:15:00.000000"
    with app.app_context():
        upgrade(revision="0003")
        db.engine.dispose()
        with closing(sqlite3.connect(path)) as connection, connection:
            _insert(connection, "schools", {"id": "sch_push", "delivery_method": "http_post"})
            _insert(connection, "schools", {"id": "sch_pull", "delivery_method": "pull"})
            event = {
                "at": at,
                "campaign_id": "cpn_a",
                "ad_id": "ad_a",
                "school_id": "sch_push",
                "publisher_id": "pub_1",
            }
            _insert(connection, "impressions", {"id": "imp_1", **event})
            _insert(connection, "impressions", {"id": "imp_2", **event, "is_bot": 1})
            _insert(connection, "clicks", {"id": "clk_1", **event, "counted": 1, "spend_cents": 0})
            for number, (status, school) in enumerate(
                (("delivered", "sch_push"), ("returned", "sch_push"), ("failed", "sch_push"), ("accepted", "sch_pull")),
                1,
            ):
                _insert(
                    connection,
                    "leads",
                    {
                        "id": f"lead_{number}",
                        "status": status,
                        "school_id": school,
                        "campaign_id": "cpn_a",
                        "ad_id": "ad_a",
                        "publisher_id": "pub_1",
                        "pricing_model": "cpl",
                        "price_cents": 4500,
                        "created_at": at,
                    },
                )
        upgrade(revision="0004")
        db.engine.dispose()
        with closing(sqlite3.connect(path)) as connection:
            daily = connection.execute(
                "SELECT day, impressions, bot_impressions, clicks, leads, delivered, failed, returned, spend_cents "
                "FROM rollup_daily"
            ).fetchall()
            hours = connection.execute("SELECT hour FROM rollup_hourly").fetchall()
        # Delivered: the delivered, the returned and the pull school's accepted lead; billed: two of them.
        assert daily == [("2026-11-26", 1, 1, 1, 4, 3, 1, 1, 9000)]
        assert hours == [("2026-11-26 19:00:00.000000",)]
        downgrade(revision="0003")
        db.engine.dispose()
        with closing(sqlite3.connect(path)) as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert "rollup_daily" not in tables and "ix_impressions_campaign_id" in tables


@pytest.fixture
def spare_database(tmp_path):
    """An empty database of the session's kind: a SQLite file, or a PostgreSQL database dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from tests.conftest import _DATABASE_URL, _DROP_WITH

    if _DROP_WITH is None:
        yield f"sqlite:///{tmp_path / 'spare.db'}"
        return
    name = f"{make_url(_DATABASE_URL).database}_spare"
    engine = create_engine(_DROP_WITH, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def test_migration_0005_adds_the_privacy_tables_and_lead_columns_and_takes_them_away(app, spare_database):
    """On the session's kind of database (SQLite, or PostgreSQL in CI). ``app`` is the session's, whose
    embedded Redis the app made here shares."""
    from dataclasses import replace

    from flask_migrate import downgrade, upgrade
    from sqlalchemy import inspect

    from adserver import create_app
    from adserver.extensions import db

    privacy_tables = {"opt_outs", "privacy_requests", "opt_out_notices", "opt_out_notice_attempts"}
    other = create_app(replace(load_settings(), database_url=spare_database))

    def schema() -> tuple[set[str], set[str]]:
        db.engine.dispose()
        inspector = inspect(db.engine)
        return set(inspector.get_table_names()), {column["name"] for column in inspector.get_columns("leads")}

    try:
        with other.app_context():
            upgrade(revision="0004")
            upgrade()
            tables, lead_columns = schema()
            assert privacy_tables <= tables and {"opted_out_at", "erased_at"} <= lead_columns
            downgrade(revision="0004")
            tables, lead_columns = schema()
            assert not privacy_tables & tables and not {"opted_out_at", "erased_at"} & lead_columns
            upgrade()
            assert privacy_tables <= schema()[0]
            db.engine.dispose()
    finally:
        other.extensions["campaign_index"].stop()
        app.extensions["celery"].set_default()


def test_migration_0006_adds_lead_request_ids_and_previous_signing_secrets_and_takes_them_away(app, spare_database):
    from dataclasses import replace

    from flask_migrate import downgrade, upgrade
    from sqlalchemy import inspect

    from adserver import create_app
    from adserver.extensions import db

    other = create_app(replace(load_settings(), database_url=spare_database))
    added = {("leads", "request_id"), ("schools", "delivery_secret_previous_encrypted"),
             ("schools", "delivery_secret_previous_until")}  # fmt: skip

    def columns() -> set[tuple[str, str]]:
        db.engine.dispose()
        inspector = inspect(db.engine)
        return {(table, column["name"]) for table in ("leads", "schools") for column in inspector.get_columns(table)}

    try:
        with other.app_context():
            upgrade(revision="0005")
            assert not added & columns()
            upgrade()
            assert added <= columns()
            downgrade(revision="0005")
            assert not added & columns()
            db.engine.dispose()
    finally:
        other.extensions["campaign_index"].stop()
        app.extensions["celery"].set_default()


def test_migration_0008_sums_the_daily_rollup_per_day_and_campaign_and_takes_it_away(app, spare_database):
    from dataclasses import replace

    from flask_migrate import downgrade, upgrade
    from sqlalchemy import inspect, text

    from adserver import create_app
    from adserver.extensions import db
    from adserver.models.rollups import METRICS

    other = create_app(replace(load_settings(), database_url=spare_database))
    columns = ", ".join(METRICS)
    try:
        with other.app_context():
            upgrade(revision="0007")
            for publisher_id, ad_id, impressions in (("pub_1", "ad_a", 10), ("pub_2", "ad_a", 5), ("", "ad_b", 1)):
                db.session.execute(
                    text(f"INSERT INTO rollup_daily (day, campaign_id, ad_id, publisher_id, school_id, {columns}) "
                         f"VALUES ('2026-11-26', 'cpn_a', :ad, :publisher, 'sch_a', :n, 1, 2, 0, 3, 2, 1, 0, 1, 4500)"),
                    {"ad": ad_id, "publisher": publisher_id, "n": impressions},
                )  # fmt: skip
            db.session.execute(
                text(f"INSERT INTO rollup_daily (day, campaign_id, ad_id, publisher_id, school_id, {columns}) "
                     f"VALUES ('2026-11-27', 'cpn_a', 'ad_a', 'pub_1', 'sch_a', 7, 0, 0, 0, 0, 0, 0, 0, 0, 0)")
            )  # fmt: skip
            db.session.commit()
            upgrade()
            found = db.session.execute(
                text(f"SELECT CAST(day AS VARCHAR(10)), campaign_id, school_id, {columns} FROM rollup_campaign_daily "
                     "ORDER BY day")
            ).all()  # fmt: skip
            assert [tuple(row) for row in found] == [
                ("2026-11-26", "cpn_a", "sch_a", 16, 3, 6, 0, 9, 6, 3, 0, 3, 13500),
                ("2026-11-27", "cpn_a", "sch_a", 7, 0, 0, 0, 0, 0, 0, 0, 0, 0),
            ]
            db.session.rollback()
            downgrade(revision="0007")
            db.engine.dispose()
            assert "rollup_campaign_daily" not in inspect(db.engine).get_table_names()
            db.engine.dispose()
    finally:
        other.extensions["campaign_index"].stop()
        app.extensions["celery"].set_default()


def test_openapi_describes_every_route_with_its_schemas(app, client):
    document = client.get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    # The HTML pages and the widget script are for browsers, not API endpoints; health and metrics for operators.
    browser_blueprints = ("pages.", "widget.", "dashboard.")
    for rule in app.url_map.iter_rules():
        if rule.endpoint in ("static", "openapi.openapi_document") or rule.rule in ("/healthz", "/readyz", "/metrics"):
            continue
        if rule.endpoint.startswith(browser_blueprints):
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented, (path, method)
    create = document["paths"]["/v1/schools"]["post"]
    schema_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    school_in = document["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert {"name", "timezone"} <= set(school_in["required"])
    assert "201" in create["responses"] and "422" in create["responses"]


def test_healthz_and_readyz(client):
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_is_503_when_redis_does_not_answer(app, client):
    import redis

    original = app.extensions["redis"]
    app.extensions["redis"] = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    try:
        response = client.get("/readyz")
    finally:
        app.extensions["redis"] = original
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"] == "unavailable"


def test_every_response_carries_a_request_id(client):
    response = client.get("/healthz", headers={"X-Request-Id": "abc123"})
    assert response.headers["X-Request-Id"] == "abc123"
    assert len(client.get("/healthz").headers["X-Request-Id"]) == 32


def test_seed_demo_is_idempotent(app, client, admin):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    second = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert "school exists" in second.output
    schools = client.get("/v1/schools", headers=admin).get_json()["data"]
    assert len(schools) == 5
    assert len({s["name"] for s in schools}) == 5
    campaigns = client.get("/v1/campaigns", headers=admin).get_json()["data"]
    assert len(campaigns) == 5 and all(c["status"] == "active" for c in campaigns)
    nursing = next(s for s in schools if "Nursing" in s["name"])
    assert {p["interest"] for p in nursing["programs"]} >= {"registered-nursing"}


class TestSettings:
    PRODUCTION = {
        "DATABASE_URL": "postgresql://u@db/adserver",
        "REDIS_URL": "redis://cache:6379/0",
        "SECRET_KEY": "a-long-enough-secret-key",
        "ENCRYPTION_KEY": "W2q8pTqQ5v2r0Hk7v1rZ2o3QyJc2m1y0cVJrR3cXJtY=",
    }

    def test_production_settings_are_read(self, tmp_path):
        settings = load_settings({**self.PRODUCTION, "INSTANCE_DIR": str(tmp_path)})
        assert settings.database_url == "postgresql+psycopg://u@db/adserver"
        assert not settings.embedded and not settings.embedded_redis

    @pytest.mark.parametrize("missing", ["SECRET_KEY", "ENCRYPTION_KEY"])
    def test_a_missing_production_secret_stops_the_start(self, tmp_path, missing):
        env = {k: v for k, v in self.PRODUCTION.items() if k != missing}
        with pytest.raises(ConfigError, match=missing):
            load_settings({**env, "INSTANCE_DIR": str(tmp_path)})

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("DATABASE_URL", "mysql://u@db/x"),
            ("REDIS_URL", "http://cache"),
            ("ENCRYPTION_KEY", "too-short"),
            ("SECRET_KEY", "short"),
            ("PUBLIC_BASE_URL", "ftp://ads.example"),
            ("DELIVERY_RETRY_BASE_S", "soon"),
            ("RATE_LIMIT_ADS_PER_IP", "lots"),
            ("RATE_LIMIT_LEADS_PER_KEY", "300/minute;10/second"),
            ("TRUSTED_PROXIES", "two"),
        ],
    )
    def test_a_malformed_setting_is_named(self, tmp_path, name, value):
        with pytest.raises(ConfigError, match=name):
            load_settings({**self.PRODUCTION, name: value, "INSTANCE_DIR": str(tmp_path)})

    def test_rate_limits_default_to_the_contract_and_each_is_a_setting(self, tmp_path):
        defaults = load_settings({**self.PRODUCTION, "INSTANCE_DIR": str(tmp_path)})
        assert {name: str(rate) if rate else None for name, rate in vars(defaults.rate_limits).items()} == {
            "ads_per_ip": "300 per 1 minute", "clicks_per_ip": "60 per 1 minute", "leads_per_ip": "20 per 1 minute",
            "ads_per_key": None, "leads_per_key": "300 per 1 minute", "failed_auth_per_ip": "20 per 1 minute",
        }  # fmt: skip
        assert defaults.trusted_proxies == 0
        overrides = {
            "RATE_LIMIT_ADS_PER_KEY": "5000/minute",
            "RATE_LIMIT_CLICKS_PER_IP": "none",
            "TRUSTED_PROXIES": "2",
        }
        changed = load_settings({**self.PRODUCTION, "INSTANCE_DIR": str(tmp_path), **overrides})
        assert str(changed.rate_limits.ads_per_key) == "5000 per 1 minute" and changed.rate_limits.clicks_per_ip is None
        assert changed.trusted_proxies == 2

    def test_embedded_defaults_generate_and_keep_development_secrets(self, tmp_path):
        first = load_settings({"INSTANCE_DIR": str(tmp_path)})
        second = load_settings({"INSTANCE_DIR": str(tmp_path)})
        assert first.embedded and first.embedded_redis
        assert first.database_url.startswith("sqlite:///")
        assert first.redis_url == f"unix://{tmp_path / 'redis.sock'}"
        assert (first.secret_key, first.encryption_key) == (second.secret_key, second.encryption_key)
