"""Many rows in one statement, for the event and rollup writes that run thousands of rows a second.

On PostgreSQL the rows are COPYed into a temporary staging table, then moved with one
``INSERT ... SELECT ... ON CONFLICT``: COPY is PostgreSQL's bulk path, and the statement's shape
does not grow with the rows. SQLite, in process, runs the statement once per row (``executemany``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.dialects import sqlite

from adserver.extensions import db


def _stage(table: Table, columns: tuple[str, ...], rows: Sequence[dict[str, Any]]) -> str:
    """COPY the rows into the session connection's staging table for ``table`` (a temporary copy of its
    columns, emptied at every commit) and return its name."""
    staging = f"staging_{table.name}"
    db.session.execute(text(f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table.name}) ON COMMIT DELETE ROWS"))
    driver = db.session.connection().connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(f"COPY {staging} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[name] for name in columns])
    return staging


def _from_staging(table: Table, staging: str, columns: tuple[str, ...], conflict: tuple[str, ...],
                  adding: tuple[str, ...], returning: str | None) -> str:  # fmt: skip
    names = ", ".join(columns)
    # Names come from the table's own metadata, never from input.
    sql = f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {staging} ON CONFLICT ({', '.join(conflict)}) "  # noqa: S608
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
        staging = _stage(table, columns, rows)
        return list(db.session.execute(text(_from_staging(table, staging, columns, (key,), (), key))).scalars())
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
        staging = _stage(table, columns, rows)
        db.session.execute(text(_from_staging(table, staging, columns, conflict, adding, None)))
        return
    statement = sqlite.insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(conflict), set_={name: table.c[name] + statement.excluded[name] for name in adding}
    )
    db.session.execute(statement, list(rows))
