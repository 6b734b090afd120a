"""Extension singletons, created unbound and bound to an app by ``init_app``."""

from __future__ import annotations

from typing import Any

import redis
from celery import Celery, Task
from flask import Flask, current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine

from adserver.models import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()


def _configure_sqlite(engine: Engine) -> None:
    """WAL for concurrent readers; every transaction takes the write lock up front
    (BEGIN IMMEDIATE) so read-check-write sequences such as cap checks are serialised."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def init_db(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.config["MIGRATIONS_DIR"]))
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            _configure_sqlite(db.engine)


class RedisClient:
    """The app's Redis connection pool, reached as ``redis_client.client``."""

    def init_app(self, app: Flask) -> None:
        app.extensions["redis"] = redis.Redis.from_url(
            app.config["REDIS_URL"], socket_timeout=5, socket_connect_timeout=2, health_check_interval=30
        )

    @property
    def client(self) -> redis.Redis:
        return current_app.extensions["redis"]  # type: ignore[no-any-return]


redis_client = RedisClient()


def celery_init_app(app: Flask) -> Celery:
    """Bind Celery to the app: every task runs inside an app context (Flask's Celery pattern)."""

    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    from config.celery import celery_config

    celery = Celery(app.name, task_cls=FlaskTask)
    celery.config_from_object(celery_config(app.config["REDIS_URL"]))
    celery.set_default()
    app.extensions["celery"] = celery
    return celery
