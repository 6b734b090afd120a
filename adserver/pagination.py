"""Cursor pagination over time-ordered ids: ``{"data": [...], "next_cursor": ...}``."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from adserver.errors import ApiError
from adserver.extensions import db

T = TypeVar("T")


def encode_cursor(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        position = None
    if not isinstance(position, dict):
        raise ApiError(400, "invalid_cursor", "The cursor is not one this API returned.")
    return position


def encode_time_cursor(moment: datetime, row_id: str) -> str:
    """The cursor after a row of a list ordered by (time, id)."""
    return encode_cursor({"t": moment.isoformat(), "id": row_id})


def decode_time_cursor(cursor: str) -> tuple[datetime, str]:
    """The (time, id) a cursor from ``encode_time_cursor`` points after."""
    position = decode_cursor(cursor)
    try:
        moment = datetime.fromisoformat(str(position["t"]))
        row_id = str(position["id"])
    except (KeyError, ValueError):
        raise ApiError(400, "invalid_cursor", "The cursor is not one this API returned.") from None
    if moment.tzinfo is None:
        raise ApiError(400, "invalid_cursor", "The cursor is not one this API returned.")
    return moment, row_id


def paginate(
    stmt: Select[tuple[T]], id_column: InstrumentedAttribute[str], limit: int, cursor: str | None
) -> tuple[list[T], str | None]:
    """One page of ``stmt`` ordered by id, after the cursor's id."""
    if cursor:
        after = decode_cursor(cursor).get("after")
        if not isinstance(after, str):
            raise ApiError(400, "invalid_cursor", "The cursor is not one this API returned.")
        stmt = stmt.where(id_column > after)
    rows = list(db.session.scalars(stmt.order_by(id_column).limit(limit + 1)))
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor({"after": getattr(rows[-1], id_column.key)})
    return rows, None


def paginate_by_time(
    stmt: Select[tuple[T]],
    time_column: InstrumentedAttribute[datetime],
    id_column: InstrumentedAttribute[str],
    limit: int,
    cursor: str | None,
) -> tuple[list[T], str | None]:
    """One page of ``stmt`` ordered by (time, id), after the cursor's row. The next cursor follows the
    last row of any non-empty page, so a client that keeps it and asks again later gets exactly the
    rows that arrived since; an empty page has none."""
    if cursor:
        moment, row_id = decode_time_cursor(cursor)
        stmt = stmt.where(or_(time_column > moment, and_(time_column == moment, id_column > row_id)))
    rows = list(db.session.scalars(stmt.order_by(time_column, id_column).limit(limit)))
    last = rows[-1] if rows else None
    return rows, encode_time_cursor(getattr(last, time_column.key), getattr(last, id_column.key)) if last else None
