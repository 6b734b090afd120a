"""Persisting impressions and clicks from their Redis streams into the database, in batches.

Each stream is read through the consumer group ``persist``: an entry is
acknowledged (and deleted) only after its batch committed, entries a dead
worker left pending are reclaimed after ``EVENT_RECLAIM_IDLE_S`` (a minute), and rows are inserted with
"on conflict do nothing" on their ids. The events the insert really inserted
(``RETURNING``) are added to the rollups in the same transaction, so a
redelivered batch never counts an event twice, in the tables or in reports.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import redis
from flask import current_app
from sqlalchemy import Table

from adserver.bulk import insert_new
from adserver.extensions import db, redis_client
from adserver.models import Base, Click, Impression
from adserver.services.reporting.rollups import Tally, add_to_rollups, rollup_key
from adserver.services.serving.counters import CLICK_STREAM, IMPRESSION_STREAM

log = logging.getLogger(__name__)

GROUP = "persist"
BATCH_SIZE = 2000
MAX_BATCHES_PER_RUN = 40


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


def _impression_figures(row: dict[str, Any]) -> dict[str, int]:
    return {"bot_impressions": 1} if row["is_bot"] else {"impressions": 1}


def _click_figures(row: dict[str, Any]) -> dict[str, int]:
    return {"clicks": int(row["counted"]), "bot_clicks": int(row["is_bot"]), "spend_cents": row["spend_cents"]}


@dataclass(frozen=True)
class EventKind:
    """A stream of events, the table they are stored in and what each adds to its rollup row."""

    stream: str
    model: type[Base]
    to_row: Callable[[dict[str, Any]], dict[str, Any]]
    figures: Callable[[dict[str, Any]], dict[str, int]]


IMPRESSIONS = EventKind(IMPRESSION_STREAM, Impression, _impression_row, _impression_figures)
CLICKS = EventKind(CLICK_STREAM, Click, _click_row, _click_figures)


def store_events(kind: EventKind, rows: Iterable[dict[str, Any]]) -> int:
    """Insert the rows that are not stored yet and add those (only those) to the rollups, in one
    transaction; returns how many were new. The stream's batches go through here, and so do bulk
    loads (the demo's traffic)."""
    by_id = {row["id"]: row for row in rows}
    if not by_id:
        return 0
    inserted = insert_new(cast(Table, kind.model.__table__), list(by_id.values()), "id")
    tally = Tally()
    for event_id in inserted:
        row = by_id[event_id]
        tally.add(rollup_key(row["at"], row["campaign_id"], row["ad_id"], row["publisher_id"], row["school_id"]),
                  **kind.figures(row))  # fmt: skip
    add_to_rollups(tally)
    db.session.commit()
    return len(inserted)


def _store(client: redis.Redis, kind: EventKind, entries: list[tuple[bytes, dict[bytes, bytes] | None]]) -> int:
    rows = []
    for entry_id, fields in entries:
        if not fields:  # reclaimed after it was already deleted
            continue
        try:
            decoded = json.loads(fields[b"e"])
            # An entry holds one event or a list of them (the impressions of one ad request).
            rows += [kind.to_row(event) for event in (decoded if isinstance(decoded, list) else [decoded])]
        except (KeyError, ValueError, TypeError):
            # A malformed entry would block the stream forever; it is dropped and logged by id only.
            log.error("dropping malformed event", extra={"stream": kind.stream, "entry_id": entry_id.decode()})
    stored = store_events(kind, rows)
    ids = [entry_id for entry_id, _ in entries]
    if ids:
        client.xack(kind.stream, GROUP, *ids)
        client.xdel(kind.stream, *ids)
    return stored


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
        stored += _store(client, kind, reclaimed[1])
    for _ in range(MAX_BATCHES_PER_RUN):
        replies: Any = client.xreadgroup(GROUP, consumer, {stream: ">"}, count=BATCH_SIZE)
        entries = replies[0][1] if replies else []
        if not entries:
            break
        stored += _store(client, kind, entries)
    return stored


def persist_impressions() -> int:
    """Store waiting impressions; safe to run concurrently and to repeat."""
    return persist_stream(IMPRESSIONS)


def persist_clicks() -> int:
    """Store waiting clicks; safe to run concurrently and to repeat."""
    return persist_stream(CLICKS)
