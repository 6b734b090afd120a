"""Floors: the cheapest shape each measured endpoint could have on this stack, served by gunicorn
like the trivial endpoint. They do only the I/O the design requires, with none of the product's
logic (no key, no validation, no rules, no tokens, no encryption), so the distance from the
trivial endpoint to a floor is what the stack itself costs.

* ``ads``: ``GET /floor/ads``: the two Redis round trips of an ad request (a read of about 40
  counters and a visitor's frequency; one script recording five impressions) and a 4 KB answer.
* ``leads``: ``POST /floor/leads``: parse a JSON body, one SQLite transaction (a read, a duplicate
  lookup, one insert: a lead carries its delivery job in its row), a 201 answer. Intake's Redis call
  carries many leads (``adserver.batching``), so the floor has none.

``FLOOR_REDIS_SOCKET`` names the Redis Unix socket, ``FLOOR_SQLITE`` the SQLite file (``leads`` only).
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid

import redis
from flask import Flask, Response, request

_redis = redis.Redis(unix_socket_path=os.environ["FLOOR_REDIS_SOCKET"])

ads = Flask("floor_ads")
_KEYS = [f"ctr:cpn_{n:026d}:{kind}" for n in range(8) for kind in ("imps", "clicks", "leads", "spend", "cap")]
_FIELDS = [f"cpn_{n:026d}:20261127" for n in range(8)]
_RECORD = _redis.register_script(
    "redis.call('XADD', KEYS[1], '*', 'e', ARGV[1]) "
    "for i = 2, #KEYS do redis.call('INCR', KEYS[i]) redis.call('HINCRBY', 'floor:freq', KEYS[i], 1) end return 1"
)
_ANSWER = json.dumps({"ads": [{"text": "x" * 800} for _ in range(5)]})


@ads.get("/floor/ads")
def floor_ads() -> Response:
    pipe = _redis.pipeline(transaction=False)
    pipe.mget(_KEYS)
    pipe.hmget("floor:freq", _FIELDS)
    pipe.execute()
    _RECORD(keys=["floor:impressions", *_KEYS[:5]], args=["x" * 1500])
    return Response(_ANSWER, mimetype="application/json")


leads = Flask("floor_leads")
_db: sqlite3.Connection | None = None


def _connection() -> sqlite3.Connection:
    global _db
    if _db is None:
        _db = sqlite3.connect(os.environ["FLOOR_SQLITE"], isolation_level=None, timeout=30)
        _db.execute("PRAGMA journal_mode=WAL")
        _db.execute("PRAGMA synchronous=NORMAL")
        _db.execute("CREATE TABLE IF NOT EXISTS schools (id INTEGER PRIMARY KEY, name TEXT)")
        _db.execute("INSERT OR IGNORE INTO schools VALUES (1, 'Floor')")
        _db.execute("CREATE TABLE IF NOT EXISTS leads (id TEXT PRIMARY KEY, email TEXT, body TEXT, job TEXT)")
        _db.execute("CREATE INDEX IF NOT EXISTS leads_email ON leads (email)")
    return _db


@leads.post("/floor/leads")
def floor_leads() -> Response:
    data = json.loads(request.get_data())
    lead_id = uuid.uuid4().hex
    db = _connection()
    db.execute("BEGIN IMMEDIATE")
    db.execute("SELECT * FROM schools WHERE id = 1").fetchone()
    db.execute("SELECT id FROM leads WHERE email = ? LIMIT 1", (data["email"],)).fetchone()
    db.execute("INSERT INTO leads VALUES (?, ?, ?, 'pending')", (lead_id, data["email"], json.dumps(data)))
    db.execute("COMMIT")
    return Response(json.dumps({"id": lead_id, "status": "accepted"}), status=201, mimetype="application/json")
