"""Migrations, OpenAPI, health checks, settings and operator commands."""

from __future__ import annotations

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


def test_openapi_describes_every_route_with_its_schemas(app, client):
    document = client.get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in ("static", "openapi.openapi_document") or rule.rule in ("/healthz", "/readyz"):
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
        ],
    )
    def test_a_malformed_setting_is_named(self, tmp_path, name, value):
        with pytest.raises(ConfigError, match=name):
            load_settings({**self.PRODUCTION, name: value, "INSTANCE_DIR": str(tmp_path)})

    def test_embedded_defaults_generate_and_keep_development_secrets(self, tmp_path):
        first = load_settings({"INSTANCE_DIR": str(tmp_path)})
        second = load_settings({"INSTANCE_DIR": str(tmp_path)})
        assert first.embedded and first.embedded_redis
        assert first.database_url.startswith("sqlite:///")
        assert first.redis_url == f"unix://{tmp_path / 'redis.sock'}"
        assert (first.secret_key, first.encryption_key) == (second.secret_key, second.encryption_key)
