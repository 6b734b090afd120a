"""Persisting impressions and clicks from their Redis streams into the database, in batches.

Each stream is read through the consumer group ``persist``: an entry is
acknowledged (and deleted) only after its batch committed, entries a dead
worker left pending are reclaimed after ``EVENT_RECLAIM_IDLE_S`` (a minute), and rows are inserted with
"on conflict do nothing" on their ids. The events the insert really inserted
are added to the rollups in the same transaction (``rollups.insert_events``), so a
redelivered batch never counts an event twice, in the tables or in reports.

A batch is committed only while its entries are still pending in Redis for this
worker, checked inside the transaction under the money fence (``serving.usage``):
after Redis lost its data, the counters a click was charged to are gone, and a
rebuild reads the clicks table under the same fence, so a click read before the
loss is either in the table the rebuild reads, or dropped with its stream entry
(it was never billed, and never counted in the rebuilt counters).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import orjson
import redis
from flask import current_app
from sqlalchemy import Table

from adserver.extensions import db, redis_client
from adserver.models import Base, Click, Impression
from adserver.services.reporting.rollups import insert_events
from adserver.services.serving import usage
from adserver.services.serving.counters import CLICK_STREAM, IMPRESSION_STREAM

log = logging.getLogger(__name__)

GROUP = "persist"
BATCH_SIZE = 5000
MAX_BATCHES_PER_RUN = 16


def _impression_row(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event["id"],
        "request_id": event["request_id"],
        "at": datetime.fromisoformat(event["at"]),
        "publisher_id": event["publisher_id"],
        "campaign_id": event["campaign_id"],
        "ad_id": event["ad_id"],
        "school_id": event["school_id"],
        "rank": int(event["rank"]),
        "pricing_model": event["pricing_model"],
        "bid_cents": int(event["bid_cents"]),
        "postal_code": event["postal_code"],
        "country": event["country"],
        "region": event["region"],
        "interest": event["interest"],
        "visitor_id": event["visitor_id"],
        "is_bot": bool(event["is_bot"]),
    }


def _click_row(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event["id"],
        "impression_id": event["impression_id"],
        "at": datetime.fromisoformat(event["at"]),
        "publisher_id": event["publisher_id"],
        "campaign_id": event["campaign_id"],
        "ad_id": event["ad_id"],
        "school_id": event["school_id"],
        "is_bot": bool(event["is_bot"]),
        "counted": bool(event["counted"]),
        "spend_cents": int(event["spend_cents"]),
    }


def _consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _ensure_group(client: redis.Redis, stream: str) -> None:
    try:
        client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


@dataclass(frozen=True)
class EventKind:
    """A stream of events, the table they are stored in and what each adds to its rollup row (SQL
    over the table's columns, per figure)."""

    stream: str
    model: type[Base]
    to_row: Callable[[dict[str, Any]], dict[str, Any]]
    figures: dict[str, str]


IMPRESSIONS = EventKind(IMPRESSION_STREAM, Impression, _impression_row, {
    "impressions": "CASE WHEN is_bot THEN 0 ELSE 1 END", "bot_impressions": "CASE WHEN is_bot THEN 1 ELSE 0 END",
})  # fmt: skip
CLICKS = EventKind(CLICK_STREAM, Click, _click_row, {
    "clicks": "CASE WHEN counted THEN 1 ELSE 0 END", "bot_clicks": "CASE WHEN is_bot THEN 1 ELSE 0 END",
    "spend_cents": "spend_cents",
})  # fmt: skip


def _insert_and_count(kind: EventKind, rows: Iterable[dict[str, Any]]) -> int:
    """In the session's transaction: insert the rows that are not stored yet and add those (only
    those) to the rollups; returns how many were new."""
    by_id = {row["id"]: row for row in rows}
    return insert_events(cast(Table, kind.model.__table__), list(by_id.values()), kind.figures)


def store_events(kind: EventKind, rows: Iterable[dict[str, Any]]) -> int:
    """Store events that do not come through a stream (the demo's traffic) and commit; returns how
    many were new."""
    stored = _insert_and_count(kind, rows)
    db.session.commit()
    return stored


def entry_events(fields: dict[bytes, bytes]) -> list[dict[str, Any]]:
    """The events of one stream entry: ``r`` (what an ad request's impressions share) with ``a``
    (each impression's own fields); or ``e``, one event (a click, with ``counted`` and
    ``spend_cents`` beside it) or a list of them."""
    if b"r" in fields:
        shared = orjson.loads(fields[b"r"])
        return [{**shared, **own} for own in orjson.loads(fields[b"a"])]
    decoded = orjson.loads(fields[b"e"])
    events = decoded if isinstance(decoded, list) else [decoded]
    extra = {key.decode(): orjson.loads(value) for key, value in fields.items() if key != b"e"}
    return [{**event, **extra} for event in events]


def _still_pending(client: redis.Redis, stream: str, consumer: str, ids: list[bytes]) -> bool:
    """Whether every entry is still pending for this consumer: not if Redis lost the stream."""
    try:
        pending: Any = client.xpending_range(stream, GROUP, min=ids[0], max=ids[-1], count=len(ids),
                                             consumername=consumer)  # fmt: skip
    except redis.ResponseError:  # NOGROUP: the stream and its group are gone
        return False
    return {entry["message_id"] for entry in pending} >= set(ids)


def _store(client: redis.Redis, kind: EventKind, entries: list[tuple[bytes, dict[bytes, bytes] | None]],
           consumer: str) -> int:  # fmt: skip
    rows = []
    for entry_id, fields in entries:
        if not fields:  # reclaimed after it was already deleted
            continue
        try:
            rows += [kind.to_row(event) for event in entry_events(fields)]
        except (KeyError, ValueError, TypeError):
            # A malformed entry would block the stream forever; it is dropped and logged by id only.
            log.error("dropping malformed event", extra={"stream": kind.stream, "entry_id": entry_id.decode()})
    ids = [entry_id for entry_id, _ in entries]
    if not ids:
        return 0
    with usage.money_fence(exclusive=False):
        if not _still_pending(client, kind.stream, consumer, ids):
            db.session.rollback()
            log.warning("dropping events that Redis lost while they were being stored",
                        extra={"stream": kind.stream, "entries": len(ids)})  # fmt: skip
            return 0
        stored = _insert_and_count(kind, rows)
        db.session.commit()
    acknowledge(client, kind.stream, ids)
    return stored


def acknowledge(client: redis.Redis, stream: str, ids: list[bytes]) -> None:
    """Acknowledge and delete stored entries in one transaction (MULTI/EXEC): if the reply is lost
    (Redis paused or restarting), either both happened or neither, and entries left pending are
    reclaimed and stored again (once: inserts skip ids already stored). Acknowledged but never deleted,
    they would stay in the stream for good, read by nobody."""
    pipe = client.pipeline(transaction=True)
    pipe.xack(stream, GROUP, *ids)
    pipe.xdel(stream, *ids)
    pipe.execute()


def persist_stream(kind: EventKind) -> int:
    """Move everything waiting in the kind's stream into its table and the rollups; returns how many
    events were new (a redelivered event is stored and counted once)."""
    client = redis_client.client
    stream = kind.stream
    _ensure_group(client, stream)
    consumer = _consumer_name()
    stored = 0
    # Entries another worker read but never acknowledged (it died mid-batch).
    idle_ms = int(float(current_app.config["EVENT_RECLAIM_IDLE_S"]) * 1000)
    reclaimed: Any = client.xautoclaim(stream, GROUP, consumer, min_idle_time=idle_ms, start_id="0-0",
                                       count=BATCH_SIZE)  # fmt: skip
    if reclaimed and reclaimed[1]:
        stored += _store(client, kind, reclaimed[1], consumer)
    for _ in range(MAX_BATCHES_PER_RUN):
        replies: Any = client.xreadgroup(GROUP, consumer, {stream: ">"}, count=BATCH_SIZE)
        entries = replies[0][1] if replies else []
        if not entries:
            break
        stored += _store(client, kind, entries, consumer)
    return stored


def persist_impressions() -> int:
    """Store waiting impressions; safe to run concurrently and to repeat."""
    return persist_stream(IMPRESSIONS)


def persist_clicks() -> int:
    """Store waiting clicks; safe to run concurrently and to repeat."""
    return persist_stream(CLICKS)
