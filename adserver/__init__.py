"""adserver: a self-hosted lead-generation ad server for higher-education marketing."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from adserver import embedded_redis, geo, security_headers
from adserver.api import limits
from adserver.api.blueprints import register_blueprints
from adserver.api.cors import init_cors
from adserver.cli import register_commands
from adserver.dashboard import init_dashboard
from adserver.errors import register_error_handlers
from adserver.extensions import celery_init_app, init_db, redis_client
from adserver.logs import configure_logging, init_request_ids
from adserver.services.leads import intake
from adserver.services.serving import history, rebuild
from adserver.services.serving import index as campaign_index
from config.settings import ROOT, Settings, load_settings


def _flask_config(settings: Settings) -> dict[str, object]:
    return {
        "SQLALCHEMY_DATABASE_URI": settings.database_url,
        # A database server may drop a pooled connection; a SQLite file cannot, so it is not pinged.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": not settings.database_url.startswith("sqlite")},
        "REDIS_URL": settings.redis_url,
        "SECRET_KEY": settings.secret_key,
        "ENCRYPTION_KEY": settings.encryption_key,
        "ENCRYPTION_KEYS_OLD": settings.encryption_keys_old,
        "HASH_KEY": settings.hash_key,
        "ADMIN_API_KEY": settings.admin_api_key,
        "METRICS_TOKEN": settings.metrics_token,
        "PUBLIC_BASE_URL": settings.public_base_url,
        "DELIVERY_URL_ALLOWLIST": settings.delivery_url_allowlist,
        "DELIVERY_RETRY_BASE_S": settings.delivery_retry_base_s,
        "EVENT_RETENTION_DAYS": settings.event_retention_days,
        "EVENT_RECLAIM_IDLE_S": settings.event_reclaim_idle_s,
        "MIGRATIONS_DIR": ROOT / "migrations",
        "JSON_SORT_KEYS": False,
        "SETTINGS": settings,
    }


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app: settings from the environment, then each part bound in turn."""
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    if settings.embedded_redis:
        embedded_redis.ensure_running(settings.embedded_redis_socket)

    app = Flask(__name__, instance_path=str(settings.instance_dir))
    app.config.from_mapping(_flask_config(settings))
    app.json.sort_keys = False  # type: ignore[attr-defined]

    if settings.trusted_proxies:
        # The client IP (rate limits, consent records) from X-Forwarded-For, as many hops back as are trusted.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)  # type: ignore[method-assign]

    init_db(app)
    redis_client.init_app(app)
    celery_init_app(app)
    init_request_ids(app)
    init_cors(app)
    limits.init_app(app, settings.rate_limits)
    security_headers.init_app(app)
    register_error_handlers(app)
    campaign_index.init_app(app)
    history.init_app(app)
    rebuild.init_app(app)
    intake.init_app(app)
    register_blueprints(app)
    init_dashboard(app)
    register_commands(app)
    geo.warm()
    return app
