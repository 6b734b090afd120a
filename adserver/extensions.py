"""Extension singletons, created unbound and bound to an app by ``init_app``."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import redis
from celery import Celery, Task
from flask import Flask, current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DBAPIError

from adserver.models import Base
from adserver.prepared import RawTransaction

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
# Bound with its app-wide check off: only the dashboard's forms use tokens (the API takes keys).
csrf = CSRFProtect()


# Every SQLite transaction takes the write lock up front (see _configure_sqlite).
_SQLITE_BEGIN = "BEGIN IMMEDIATE"


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
        connection.exec_driver_sql(_SQLITE_BEGIN)


class _WriterLock:
    """One SQLite writer at a time across threads and processes, handed over by the kernel
    (``flock``) the moment it is released."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        self._pid: int | None = None

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        if self._pid != os.getpid():  # a descriptor opened before a fork would be shared
            self._fd, self._pid = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600), os.getpid()
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *_: object) -> None:
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread_lock.release()


def init_db(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.config["MIGRATIONS_DIR"]))
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            _configure_sqlite(db.engine)
            if db.engine.url.database not in (None, "", ":memory:"):
                app.extensions["sqlite_writer_lock"] = _WriterLock(f"{db.engine.url.database}-writer.lock")


@contextmanager
def write_transaction() -> Iterator[RawTransaction]:
    """A write transaction for the hottest path, on a pooled DBAPI connection of its own (without
    the ORM session's or Core's per-statement bookkeeping; see ``adserver.prepared``): committed
    when the block ends, rolled back on an exception. Database errors come out as SQLAlchemy's.

    The session's own transaction is ended first: on SQLite every transaction here holds the
    write lock. A SQLite writer that finds the database locked sleeps and retries (1, 2, 5 ...
    ms), so on SQLite the block first queues on a lock the kernel hands over at once.
    PostgreSQL's row locks already wake waiters at once.
    """
    if db.session.registry.has():
        db.session.rollback()
    engine = db.engine
    error = engine.dialect.loaded_dbapi.Error
    try:
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            # Only BEGIN ... COMMIT holds the SQLite writer lock, not the checkout.
            with current_app.extensions.get("sqlite_writer_lock") or nullcontext():
                try:
                    if engine.dialect.name == "sqlite":
                        cursor.execute(_SQLITE_BEGIN)
                    yield RawTransaction(engine.dialect, cursor)
                    connection.commit()
                except BaseException as exc:
                    _end_failed(engine.dialect, connection, cursor, exc)
                    raise
        finally:
            connection.close()  # back to the pool
    except error as exc:
        raise DBAPIError.instance(None, None, exc, error) from exc


def _end_failed(dialect: Dialect, connection: Any, cursor: Any, exc: BaseException) -> None:
    """Roll back; a connection the database has dropped is discarded instead of pooled again."""
    error = dialect.loaded_dbapi.Error
    if isinstance(exc, error) and dialect.is_disconnect(exc, connection, cursor):
        connection.invalidate(exc)
        return
    try:
        connection.rollback()
    except error:
        connection.invalidate()


class RedisClient:
    """The app's Redis connection pool, reached as ``redis_client.client``."""

    def init_app(self, app: Flask) -> None:
        # No health_check_interval: it costs a check on every command, and a connection found dead
        # is reconnected by the client's default retry anyway.
        app.extensions["redis"] = redis.Redis.from_url(
            app.config["REDIS_URL"], socket_timeout=5, socket_connect_timeout=2
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
