"""Floors: the cheapest shape each measured endpoint could have on this stack, served by gunicorn
like the trivial endpoint. They do only the I/O the design requires, with none of the product's
logic (no key, no validation, no rules, no tokens, no encryption), so the distance from the
trivial endpoint to a floor is what the stack itself costs.

* ``ads``: ``GET /floor/ads``: the one Redis round trip of an ad request (a script of the same
  shape as ``decision_script``: 14 campaigns' money hashes read, five impressions recorded) and a
  4 KB answer.
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
# An ad request's script, shaped like the real one (decision_script): a full shortlist for five ads
# (7 schools, 2 campaigns each: decisions.SHORTLIST_*), each campaign with its money hash read and a
# spec of about 200 bytes sent; five served, each counted in its history and the visitor's frequency;
# one stream entry; the answer kept under the decision id.
_CANDIDATES = 14
_KEYS = [f"{kind}:cpn_{n:026d}" for n in range(_CANDIDATES) for kind in ("money", "hist")]
_ARGS = [value for n in range(_CANDIDATES) for value in ("x" * 200, "20261127", "1000")]
_DECIDE = _redis.register_script("""
local statuses = {}
for j = 0, #KEYS / 2 - 1 do
  redis.call('HMGET', KEYS[1 + 2 * j], 'ok', 'st', 'sd', 'sd@', 'ld', 'ld@', 'lm', 'lm@')
  statuses[j + 1] = j < 5 and 'S' or 'x'
end
for j = 0, 4 do
  redis.call('HINCRBY', KEYS[2 + 2 * j], 'i', 1)
  redis.call('HINCRBY', 'floor:freq', KEYS[1 + 2 * j], 1)
end
redis.call('XADD', 'floor:impressions', '*', 'r', string.rep('x', 300), 'a', string.rep('x', 1200))
local answer = table.concat(statuses)
redis.call('SET', 'floor:done', answer, 'EX', 120)
return answer
""")
_ANSWER = json.dumps({"ads": [{"text": "x" * 800} for _ in range(5)]})


@ads.get("/floor/ads")
def floor_ads() -> Response:
    _DECIDE(keys=_KEYS, args=_ARGS)
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
