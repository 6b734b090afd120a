"""Adding facts to the hourly and daily rollups, in the caller's transaction.

Whoever records a fact adds it here before committing: the events worker for the impressions and
clicks its insert really inserted, intake for an accepted lead, delivery and returns for a lead's
outcome. A fact is therefore counted exactly when it is recorded: a rolled-back transaction adds
nothing, and a repeat that records nothing (an event already stored, a lead whose claim lapsed)
adds nothing either.

Additions are upserts (``INSERT ... ON CONFLICT DO UPDATE SET x = x + excluded.x``), which SQLite
and PostgreSQL both run. Rows are written in key order so that two transactions touching the same
rows take their locks in the same order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple, cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

from adserver.bulk import upsert_adding
from adserver.models.rollups import METRICS, DailyRollup, HourlyRollup
from adserver.prepared import Prepared, RawTransaction


class RollupKey(NamedTuple):
    """A rollup row's key (a tuple: thousands are sorted per batch)."""

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

    def items(self) -> Iterator[tuple[RollupKey, Counter[str]]]:
        return iter(sorted(self._rows.items()))

    def rows(self, bucket: str) -> list[dict[str, Any]]:
        """Parameters for the upsert into the hourly (``bucket="hour"``) or daily (``"day"``) table."""
        merged: dict[tuple[Any, ...], dict[str, Any]] = {}
        for key, figures in self.items():
            when = key.hour if bucket == "hour" else key.hour.date()
            identity = (when, key.campaign_id, key.ad_id, key.publisher_id)
            row = merged.get(identity)
            if row is None:
                row = merged[identity] = {
                    bucket: when, "campaign_id": key.campaign_id, "ad_id": key.ad_id,
                    "publisher_id": key.publisher_id, "school_id": key.school_id, **dict.fromkeys(METRICS, 0),
                }  # fmt: skip
            for name, value in figures.items():
                row[name] += value
        return list(merged.values())


_TABLES = (("hour", cast(Table, HourlyRollup.__table__)), ("day", cast(Table, DailyRollup.__table__)))


@cache
def _prepared_upsert(dialect_name: str, bucket: str) -> Prepared:
    table = dict(_TABLES)[bucket]
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    statement = insert(table)
    return Prepared(statement.on_conflict_do_update(
        index_elements=[bucket, "campaign_id", "ad_id", "publisher_id"],
        set_={name: table.c[name] + statement.excluded[name] for name in METRICS},
    ))  # fmt: skip


def add_to_rollups(tally: Tally) -> None:
    """Add the tally to both rollups in the ORM session's transaction (the caller commits)."""
    if not tally:
        return
    for bucket, table in _TABLES:
        upsert_adding(table, tally.rows(bucket), (bucket, "campaign_id", "ad_id", "publisher_id"), METRICS)


def add_to_rollups_raw(transaction: RawTransaction, tally: Tally) -> None:
    """The same in one of ``write_transaction``'s transactions (lead intake)."""
    for bucket, _ in _TABLES:
        prepared = _prepared_upsert(transaction.dialect.name, bucket)
        for row in tally.rows(bucket):
            prepared.run(transaction, row)


def lead_outcome_figures(outcome: str, price_cents: int) -> dict[str, int]:
    """What a lead's change of status adds to the row of the hour it was accepted: ``delivered``
    bills its price (nothing for a CPC lead, whose click was billed), ``returned`` takes it back,
    ``rejected`` and ``failed`` bill nothing."""
    if outcome == "delivered":
        return {"delivered": 1, "spend_cents": price_cents}
    if outcome == "returned":
        return {"returned": 1, "spend_cents": -price_cents}
    return {outcome: 1}
