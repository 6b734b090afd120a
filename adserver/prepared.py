"""Statements for the hottest write path, run on the DBAPI cursor without SQLAlchemy's
per-execution work.

A ``Prepared`` statement is a Core statement compiled once per dialect, with the order of its
parameters, the values of its own literals and the type conversions of its parameters and
result columns worked out once. ``run`` converts the parameters, executes on the transaction's
DBAPI cursor and converts the rows. Lead intake uses it inside ``extensions.write_transaction``;
everything else goes through SQLAlchemy as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Insert, Select
from sqlalchemy.engine import Dialect

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class RawTransaction:
    """A DBAPI cursor inside an open transaction, and the dialect its statements compile for."""

    dialect: Dialect
    cursor: Any


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    given: bool  # from the caller's parameters; else the statement's own literal
    process: Processor
    literal: Any


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    params: tuple[_Param, ...]  # in the statement's order
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
        literals = compiled.construct_params(_check=False)
        binds = {name: bind for bind, name in compiled.bind_names.items()}
        params = []
        for name in (compiled.positiontup or []) if dialect.positional else list(binds):
            bind = binds[name]
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            literal = None if bind.required else literals[name]
            if process is not None and literal is not None:
                literal = process(literal)
            params.append(_Param(name, bind.required, process, literal))
        results: tuple[Processor, ...] = ()
        if isinstance(self._statement, Select):
            results = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None)
                            for column in self._statement.selected_columns)  # fmt: skip
        return _Compiled(compiled.string, tuple(params), results)

    def run(self, transaction: RawTransaction, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Execute in the transaction; the converted rows of a SELECT, else []."""
        dialect = transaction.dialect
        # An INSERT's columns are its parameters' names; a SELECT ignores them.
        key = (dialect.name, tuple(params) if isinstance(self._statement, Insert) else ())
        prepared = self._compiled.get(key)
        if prepared is None:
            prepared = self._compiled[key] = self._compile(dialect, key[1])
        values = [
            (p.process(params[p.name]) if p.process else params[p.name]) if p.given else p.literal
            for p in prepared.params
        ]
        cursor = transaction.cursor
        # qmark style (SQLite) takes the values in order, named style (PostgreSQL) by name.
        cursor.execute(prepared.sql, values if dialect.positional else dict(zip((p.name for p in prepared.params),
                                                                                values, strict=True)))  # fmt: skip
        if not prepared.results:
            return []
        rows: list[tuple[Any, ...]] = cursor.fetchall()
        if not any(prepared.results):  # as the driver gives them: no row is rebuilt
            return rows
        return [tuple(process(value) if process else value for process, value in zip(prepared.results, row,
                                                                                    strict=True))
                for row in rows]  # fmt: skip
