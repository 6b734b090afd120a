"""Many rows in one statement, for the event writes that run thousands of rows a second.

Rows are put in a temporary staging table, then moved with one ``INSERT ... SELECT``: on
PostgreSQL by binary COPY, its bulk path (values sent in the columns' own binary forms, not as text
to parse), so the statement's shape does not grow with the rows; on SQLite, in process, by one
insert per row (``executemany``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Column, MetaData, Table, insert, text

from adserver.extensions import db


@cache
def _copy_types(table: Table, columns: tuple[str, ...]) -> list[str]:
    """PostgreSQL's names of the columns' types ("varchar", "timestamp with time zone", ...), for binary COPY."""
    return [table.c[name].type.compile(dialect=db.engine.dialect).split("(")[0].lower() for name in columns]


@cache
def _sqlite_staging(table: Table) -> Table:
    """The staging table's columns, with the table's types (their conversions), for SQLite's inserts."""
    return Table(f"staging_{table.name}", MetaData(), *(Column(c.name, c.type) for c in table.columns))


def stage(table: Table, rows: Sequence[dict[str, Any]]) -> str:
    """Put the rows (every one with the same columns) in the session connection's staging table for
    ``table``, a temporary table with its columns holding these rows only, and return its name."""
    staging = f"staging_{table.name}"
    postgresql = db.engine.dialect.name == "postgresql"
    # Names come from the table's own metadata, never from input.
    like = f"(LIKE {table.name}) ON COMMIT DELETE ROWS" if postgresql else f"AS SELECT * FROM {table.name} WHERE 0"  # noqa: S608
    db.session.execute(text(f"CREATE TEMP TABLE IF NOT EXISTS {staging} {like}"))
    db.session.execute(text(f"DELETE FROM {staging}"))  # noqa: S608  (an earlier batch's rows)
    if not postgresql:
        db.session.execute(insert(_sqlite_staging(table)), list(rows))
        return staging
    columns = tuple(rows[0])
    driver = db.session.connection().connection.driver_connection
    assert driver is not None
    statement = f"COPY {staging} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types(_copy_types(table, columns))
        for row in rows:
            copy.write_row([row[name] for name in columns])
    return staging
