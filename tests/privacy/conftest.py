"""Fixtures for privacy tests: the lead tests' schools and school server, a settled clock, and
whole-database and whole-Redis dumps to search for a person's data."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
from contextlib import closing
from typing import Any

from flask import Flask
from sqlalchemy.engine import make_url

from tests.leads.conftest import LeadWorld, make_world, school_server, settled, submit  # noqa: F401

OPT_OUT = "/v1/privacy/opt-out"
ERASE = "/v1/privacy/erase"


def run_notices(app: Flask) -> int:
    """Deliver every due opt-out notice in this process; the attempts made."""
    from adserver.extensions import db
    from adserver.services.privacy.notices import run_due_notices

    with app.app_context():
        made = run_due_notices()
        db.session.remove()
    return made


def dump_database(app: Flask) -> str:
    """Everything the database holds, as text: ``pg_dump`` of PostgreSQL, SQLite's own dump of a file."""
    from adserver.extensions import db

    with app.app_context():
        db.session.remove()
        url = db.engine.url
    if url.get_backend_name() == "sqlite":
        with closing(sqlite3.connect(str(url.database))) as connection:
            return "\n".join(connection.iterdump())
    plain = make_url(url.render_as_string(hide_password=False)).set(drivername="postgresql")
    return subprocess.run(["pg_dump", "--no-owner", plain.render_as_string(hide_password=False)],
                          check=True, capture_output=True, text=True).stdout  # fmt: skip


def _values(client: Any, key: bytes) -> list[bytes]:
    kind = client.type(key).decode()
    if kind == "string":
        return [client.get(key) or b""]
    if kind == "list":
        return list(client.lrange(key, 0, -1))
    if kind in ("set", "zset"):
        return list(client.smembers(key) if kind == "set" else client.zrange(key, 0, -1))
    if kind == "hash":
        return [part for item in client.hgetall(key).items() for part in item]
    if kind == "stream":
        return [part for _, fields in client.xrange(key) for item in fields.items() for part in item]
    raise AssertionError(f"a Redis {kind} this dump cannot read")


def _readable(raw: bytes) -> str:
    """The value as text; a Celery message with its base64 body decoded."""
    text = raw.decode("utf-8", "replace")
    try:
        message = json.loads(text)
    except ValueError:
        return text
    if isinstance(message, dict) and isinstance(message.get("body"), str):
        text += base64.b64decode(message["body"]).decode("utf-8", "replace")
    return text


def dump_redis(app: Flask) -> str:
    """Every key and value of the app's Redis database as text."""
    from adserver.extensions import redis_client

    with app.app_context():
        client = redis_client.client
        return "\n".join(
            " ".join([key.decode("utf-8", "replace"), *map(_readable, _values(client, key))])
            for key in client.scan_iter(count=1000)
        )
