"""Adding facts to the rollups, at every level, in the caller's transaction.

Whoever records a fact adds it here before committing: the events worker for the impressions and
clicks its insert really inserted, intake for an accepted lead, delivery and returns for a lead's
outcome. A fact is therefore counted exactly when it is recorded: a rolled-back transaction adds
nothing, and a repeat that records nothing (an event already stored, a lead whose claim lapsed)
adds nothing either.

Additions are upserts (``INSERT ... ON CONFLICT DO UPDATE SET x = x + excluded.x``), which SQLite
and PostgreSQL both run. Rows are written level by level, in key order, so that two transactions
touching the same rows take their locks in the same order. Events come thousands at a time and are
summed by the database (``insert_events``); a lead's few figures are summed here (``Tally``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple, cast

from sqlalchemy import Insert, Table, text
from sqlalchemy.dialects import postgresql, sqlite

from adserver.bulk import stage
from adserver.extensions import db
from adserver.models.rollups import METRICS, CampaignDailyRollup, DailyRollup, HourlyRollup
from adserver.prepared import Prepared, RawTransaction


@dataclass(frozen=True)
class Level:
    """A rollup table: its time bucket (``"hour"`` or ``"day"``) and the rest of its rows' key."""

    table: Table
    bucket: str
    keys: tuple[str, ...]

    @property
    def conflict(self) -> tuple[str, ...]:
        return (self.bucket, *self.keys)


_BY_AD_AND_PUBLISHER = ("campaign_id", "ad_id", "publisher_id")
HOURLY = Level(cast(Table, HourlyRollup.__table__), "hour", _BY_AD_AND_PUBLISHER)
DAILY = Level(cast(Table, DailyRollup.__table__), "day", _BY_AD_AND_PUBLISHER)
CAMPAIGN_DAILY = Level(cast(Table, CampaignDailyRollup.__table__), "day", ("campaign_id",))
LEVELS = (HOURLY, DAILY, CAMPAIGN_DAILY)


class RollupKey(NamedTuple):
    """A fact's place in the rollups: its hour's row, from which every level's row follows."""

    hour: datetime  # UTC, on the hour
    campaign_id: str
    ad_id: str
    publisher_id: str  # "" when none
    school_id: str


def rollup_key(at: datetime, campaign_id: str, ad_id: str | None, publisher_id: str | None,
               school_id: str) -> RollupKey:  # fmt: skip
    """The rollup row a fact at ``at`` (a UTC time) belongs to."""
    return RollupKey(at.replace(minute=0, second=0, microsecond=0), campaign_id, ad_id or "", publisher_id or "",
                     school_id)  # fmt: skip


class Tally:
    """Additions to rollup rows, gathered before they are written."""

    def __init__(self) -> None:
        self._rows: dict[RollupKey, Counter[str]] = {}

    def add(self, key: RollupKey, **figures: int) -> None:
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = Counter()
        row.update(figures)

    def __bool__(self) -> bool:
        return bool(self._rows)

    def rows(self, level: Level) -> list[dict[str, Any]]:
        """Parameters for the upsert into the level's table, in key order."""
        merged: dict[tuple[Any, ...], dict[str, Any]] = {}
        for key, figures in self._rows.items():
            when = key.hour if level.bucket == "hour" else key.hour.date()
            identity = (when, *(getattr(key, name) for name in level.keys))
            row = merged.get(identity)
            if row is None:
                row = merged[identity] = {
                    **dict(zip(level.conflict, identity, strict=True)), "school_id": key.school_id,
                    **dict.fromkeys(METRICS, 0),
                }  # fmt: skip
            for name, value in figures.items():
                row[name] += value
        return [merged[identity] for identity in sorted(merged)]


@cache
def _upsert(dialect_name: str, level: Level) -> Insert:
    statement = (postgresql.insert if dialect_name == "postgresql" else sqlite.insert)(level.table)
    return statement.on_conflict_do_update(
        index_elements=list(level.conflict),
        set_={name: level.table.c[name] + statement.excluded[name] for name in METRICS},
    )


@cache
def _prepared_upsert(dialect_name: str, level: Level) -> Prepared:
    return Prepared(_upsert(dialect_name, level))


def add_to_rollups(tally: Tally) -> None:
    """Add the tally to every level in the ORM session's transaction (the caller commits)."""
    if not tally:
        return
    for level in LEVELS:
        db.session.execute(_upsert(db.engine.dialect.name, level), tally.rows(level))


def add_to_rollups_raw(transaction: RawTransaction, tally: Tally) -> None:
    """The same in one of ``write_transaction``'s transactions (lead intake)."""
    for level in LEVELS:
        prepared = _prepared_upsert(transaction.dialect.name, level)
        for row in tally.rows(level):
            prepared.run(transaction, row)


# A UTC time's hour and day, as each database computes them from a stored time: the same values the
# hourly and daily keys hold for facts added through a ``Tally`` (SQLite keeps UTC times as text,
# "YYYY-MM-DD HH:MM:SS.ffffff", and dates as "YYYY-MM-DD").
_BUCKETS = {
    "postgresql": {"hour": "date_trunc('hour', {0} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
                   "day": "CAST({0} AT TIME ZONE 'UTC' AS DATE)"},
    "sqlite": {"hour": "strftime('%Y-%m-%d %H:00:00.000000', {0})", "day": "date({0})"},
}  # fmt: skip


def _add_events_sql(level: Level, events: str, figures: Mapping[str, str], dialect_name: str) -> str:
    """An upsert adding the events of the table or CTE ``events`` to the level: per row of the level,
    the sum of each figure's SQL expression over its events (0 for a figure not given)."""
    keys = [_BUCKETS[dialect_name][level.bucket].format("at")] + [f"COALESCE({name}, '')" for name in level.keys]
    positions = ", ".join(str(n) for n in range(1, len(keys) + 1))
    sums = ", ".join(f"SUM({figures[name]})" if name in figures else "0" for name in METRICS)
    table = level.table.name
    # Names and expressions are this module's own, never input. "WHERE true" keeps SQLite from reading
    # ON CONFLICT as a join's ON.
    return (
        f"INSERT INTO {table} ({', '.join(level.conflict)}, school_id, {', '.join(METRICS)}) "  # noqa: S608
        f"SELECT {', '.join(keys)}, MAX(school_id), {sums} FROM {events} WHERE true "
        f"GROUP BY {positions} ORDER BY {positions} ON CONFLICT ({', '.join(level.conflict)}) DO UPDATE SET "
        + ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in METRICS)
    )


def insert_events(table: Table, rows: Sequence[dict[str, Any]], figures: Mapping[str, str]) -> int:
    """Insert the events (rows with distinct ids and the same columns) not stored yet and add
    those, only those, to every level, in the session's transaction; returns how many were new.
    ``figures`` maps a rollup figure to the SQL expression, over an event's columns, of what one
    event adds to it (``{"impressions": "CASE WHEN is_bot THEN 0 ELSE 1 END", ...}``)."""
    if not rows:
        return 0
    dialect_name = db.engine.dialect.name
    staging = stage(table, rows)
    columns = ", ".join(rows[0])
    insert = f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {staging}"  # noqa: S608
    if dialect_name == "postgresql":
        # One statement: what the insert really inserted (its RETURNING) is what every level adds.
        ctes = [f"new AS ({insert} ON CONFLICT (id) DO NOTHING RETURNING *)"]
        ctes += [f"level_{n} AS ({_add_events_sql(level, 'new', figures, dialect_name)})"
                 for n, level in enumerate(LEVELS)]  # fmt: skip
        return int(db.session.execute(text(f"WITH {', '.join(ctes)} SELECT count(*) FROM new")).scalar_one())  # noqa: S608
    # SQLite: the transaction holds the write lock from its start (BEGIN IMMEDIATE), so the events
    # stored already cannot change between this delete and the insert.
    db.session.execute(text(f"DELETE FROM {staging} WHERE id IN (SELECT id FROM {table.name})"))  # noqa: S608
    new = db.session.execute(text(insert))
    for level in LEVELS:
        db.session.execute(text(_add_events_sql(level, staging, figures, dialect_name)))
    return int(new.rowcount)  # type: ignore[attr-defined]


def lead_outcome_figures(outcome: str, price_cents: int) -> dict[str, int]:
    """What a lead's change of status adds to the row of the hour it was accepted: ``delivered``
    bills its price (nothing for a CPC lead, whose click was billed), ``returned`` takes it back,
    ``rejected`` and ``failed`` bill nothing."""
    if outcome == "delivered":
        return {"delivered": 1, "spend_cents": price_cents}
    if outcome == "returned":
        return {"returned": 1, "spend_cents": -price_cents}
    return {outcome: 1}
