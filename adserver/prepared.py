"""Statements for the hottest write path, run on the DBAPI cursor without SQLAlchemy's
per-execution work.

A ``Prepared`` statement is a Core statement compiled once per dialect, with the type
conversions of its parameters and result columns looked up once. ``run`` converts the
parameters, executes on the connection's DBAPI cursor (inside its current transaction) and
converts the rows. Lead intake uses it; everything else goes through SQLAlchemy as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Insert, Select
from sqlalchemy.engine import Dialect

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    compiled: Any  # SQLCompiler: fills in the statement's own literal parameters
    names: tuple[str, ...] | None  # parameter order for positional DBAPIs (SQLite), else named
    binds: dict[str, Any]  # name: its conversion, or None
    results: tuple[Processor, ...]


class Prepared:
    """A SELECT, or an INSERT of exactly the columns its parameters name (no column defaults are
    filled in)."""

    def __init__(self, statement: Select[Any] | Insert) -> None:
        self._statement = statement
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def _compile(self, dialect: Dialect, columns: tuple[str, ...]) -> _Compiled:
        compiled = self._statement.compile(dialect=dialect, column_keys=list(columns))
        if getattr(compiled, "insert_prefetch", None):
            raise ValueError("a prepared INSERT must name every column it needs")
        binds = {name: bind.type.dialect_impl(dialect).bind_processor(dialect) for name, bind in compiled.binds.items()}
        results: tuple[Processor, ...] = ()
        if isinstance(self._statement, Select):
            results = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None)
                            for column in self._statement.selected_columns)  # fmt: skip
        names = tuple(compiled.positiontup or ()) if dialect.positional else None
        return _Compiled(compiled.string, compiled, names, binds, results)

    def run(self, connection: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Execute in the connection's transaction; the converted rows of a SELECT, else []."""
        dialect = connection.dialect
        # An INSERT's columns are its parameters' names; a SELECT ignores them.
        key = (dialect.name, tuple(params) if isinstance(self._statement, Insert) else ())
        prepared = self._compiled.get(key)
        if prepared is None:
            prepared = self._compiled[key] = self._compile(dialect, key[1])
        values = prepared.compiled.construct_params(params)
        for name, process in prepared.binds.items():
            if process is not None:
                values[name] = process(values[name])
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(prepared.sql, [values[n] for n in prepared.names] if prepared.names else values)
            if not prepared.results:
                return []
            return [tuple(process(value) if process else value for process, value in zip(prepared.results, row,
                                                                                        strict=True))
                    for row in cursor.fetchall()]  # fmt: skip
        finally:
            cursor.close()
