"""Many rows in one statement, for the event and rollup writes that run thousands of rows a second.

On PostgreSQL the rows travel as one array per column and are expanded by ``unnest``: a single
statement of fixed shape, whatever the number of rows, instead of a statement per row (or a
VALUES list whose parameters grow with the rows). SQLite, in process, runs the same statement
once per row (``executemany``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, Integer, String, Table, Text, text
from sqlalchemy.dialects import sqlite

from adserver.extensions import db
from adserver.models.base import UTCDateTime


def _array_type(column: Any) -> str:
    kind = column.type
    for python_type, sql in ((UTCDateTime, "timestamptz"), (BigInteger, "bigint"), (Integer, "integer"),
                             (Boolean, "boolean"), (Date, "date"), (String, "text"), (Text, "text")):  # fmt: skip
        if isinstance(kind, python_type):
            return f"{sql}[]"
    raise TypeError(f"no array type for column {column.name} ({kind!r})")


@cache
def _unnest_insert(table: Table, columns: tuple[str, ...], conflict: tuple[str, ...], adding: tuple[str, ...],
                   returning: str | None) -> str:  # fmt: skip
    names = ", ".join(columns)
    arrays = ", ".join(f"CAST(:{name} AS {_array_type(table.c[name])})" for name in columns)
    # Names come from the table's own metadata, never from input.
    sql = f"INSERT INTO {table.name} ({names}) SELECT * FROM unnest({arrays}) ON CONFLICT ({', '.join(conflict)}) "  # noqa: S608
    if adding:
        sql += "DO UPDATE SET " + ", ".join(f"{name} = {table.name}.{name} + EXCLUDED.{name}" for name in adding)
    else:
        sql += "DO NOTHING"
    return sql + (f" RETURNING {returning}" if returning else "")


def _columns(rows: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(rows[0])


def insert_new(table: Table, rows: Sequence[dict[str, Any]], key: str) -> list[Any]:
    """Insert the rows whose ``key`` is not stored yet; returns the keys of those it inserted (a row
    already there is left as it is and not returned). Every row has the same columns."""
    if not rows:
        return []
    columns = _columns(rows)
    if db.engine.dialect.name == "postgresql":
        sql = _unnest_insert(table, columns, (key,), (), key)
        return list(db.session.execute(text(sql), {name: [row[name] for row in rows] for name in columns}).scalars())
    statement = sqlite.insert(table).on_conflict_do_nothing().returning(table.c[key])
    return list(db.session.execute(statement, list(rows)).scalars())


def upsert_adding(table: Table, rows: Sequence[dict[str, Any]], conflict: tuple[str, ...],
                  adding: tuple[str, ...]) -> None:  # fmt: skip
    """Insert each row, or add its ``adding`` columns to the row with the same ``conflict`` columns.
    No two rows may share their ``conflict`` columns. Every row has the same columns."""
    if not rows:
        return
    columns = _columns(rows)
    if db.engine.dialect.name == "postgresql":
        sql = _unnest_insert(table, columns, conflict, adding, None)
        db.session.execute(text(sql), {name: [row[name] for row in rows] for name in columns})
        return
    statement = sqlite.insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(conflict), set_={name: table.c[name] + statement.excluded[name] for name in adding}
    )
    db.session.execute(statement, list(rows))
