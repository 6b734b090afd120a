"""Campaign reports: the daily rollups summed over a date range, grouped and filtered, within the
caller's scope (a school sees its own campaigns, a publisher its own traffic, an admin all).

Reports read rollups only, never raw events, so their cost follows the number of days and
campaigns asked for, not the traffic behind them: the rows per day and campaign when the
publisher plays no part (neither grouped, filtered nor the caller's scope), else the daily rows
by campaign, ad and publisher.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
from sqlalchemy import BigInteger, ColumnElement, Table, cast, func, select, text

from adserver.auth import Principal
from adserver.errors import validation_error
from adserver.extensions import db
from adserver.models.rollups import METRICS
from adserver.prepared import Prepared, RawTransaction
from adserver.schemas.reports import ReportQuery
from adserver.services.reporting.rollups import CAMPAIGN_DAILY, DAILY, Level

MAX_DAYS = 400
REPORT_WORK_MEM = "64MB"
RATIOS = ("ctr", "lead_rate", "cpl_cents")
_DIMENSION_FIELDS = {"day": "day", "campaign": "campaign_id", "school": "school_id", "publisher": "publisher_id"}


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose figures: ``None`` for all, else one school's campaigns or one publisher's traffic."""

    school_id: str | None = None
    publisher_id: str | None = None

    @classmethod
    def of(cls, principal: Principal) -> Scope:
        return cls(school_id=principal.school_id, publisher_id=principal.publisher_id)


@dataclass(frozen=True, slots=True)
class Report:
    """Rows as plain dicts holding the grouped dimensions, the counts and the ratios (a report can have
    many thousands of rows: they are not validated models), and the totals."""

    dimensions: tuple[str, ...]
    rows: list[dict[str, Any]]
    totals: dict[str, Any]


def check_range(start: date, end: date) -> None:
    """422 naming the field: ``from`` after ``to``, or more than ``MAX_DAYS`` days."""
    if start > end:
        raise validation_error({"from": "must not be after `to`"})
    if (end - start).days + 1 > MAX_DAYS:
        raise validation_error({"to": f"the range is more than {MAX_DAYS} days"})


def figures(counts: Mapping[str, int]) -> dict[str, Any]:
    """The counts with their ratios; a ratio whose denominator is zero is null, never an error."""
    values = [int(counts[name]) for name in METRICS]
    return dict(zip((*METRICS, *RATIOS), (*values, *_ratios(values, 0)), strict=True))


def _level(query: ReportQuery, scope: Scope) -> Level:
    """The fewest rows that answer: per day and campaign, unless the publisher plays a part."""
    by_publisher = "publisher" in query.dimensions or query.publisher_id is not None or scope.publisher_id is not None
    return DAILY if by_publisher else CAMPAIGN_DAILY


def _filters(table: Table, query: ReportQuery, scope: Scope) -> list[ColumnElement[bool]]:
    where = [table.c.day >= query.from_, table.c.day <= query.to]
    for column, wanted in (("campaign_id", query.campaign_id), ("school_id", query.school_id),
                           ("publisher_id", query.publisher_id), ("school_id", scope.school_id),
                           ("publisher_id", scope.publisher_id)):  # fmt: skip
        if wanted is not None:
            where.append(table.c[column] == wanted)
    return where


def fetch_groups(query: ReportQuery, scope: Scope) -> list[tuple[Any, ...]]:
    """The query behind a report: one row per group, the grouped dimensions then the sums of ``METRICS``."""
    check_range(query.from_, query.to)
    level = _level(query, scope)
    table = level.table
    fields = [_DIMENSION_FIELDS[name] for name in query.dimensions]
    keys = [table.c[field] for field in fields]
    statement = select(*keys).where(*_filters(table, query, scope)).order_by(*keys)
    if set(level.conflict) <= set(fields):  # the grouping holds the rows' whole key: each row is a group
        statement = statement.add_columns(*(table.c[name] for name in METRICS))
    else:
        # SUM of a bigint is a numeric on PostgreSQL: cast back, so figures are ints everywhere.
        statement = statement.add_columns(
            *(cast(func.coalesce(func.sum(table.c[name]), 0), BigInteger) for name in METRICS)
        ).group_by(*keys)
    if db.engine.dialect.name == "postgresql":
        # The rollup key's index carries every figure and is in (day, campaign) order: read it alone,
        # in order, rather than the table, hashed and sorted, which the planner would otherwise prefer
        # for a long range (and then sorted in memory, not on disk).
        db.session.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))
        db.session.execute(text("SET LOCAL enable_seqscan = off"))
    # Tens of thousands of rows: fetched as the driver gives them, not as SQLAlchemy rows.
    cursor = db.session.connection().connection.cursor()
    try:
        return Prepared(statement).run(RawTransaction(db.engine.dialect, cursor), {})
    finally:
        cursor.close()
        db.session.rollback()


def build_report(query: ReportQuery, scope: Scope) -> Report:
    """The figures of every group in the range, in the order of the grouped dimensions, and their totals."""
    fields = [_DIMENSION_FIELDS[name] for name in query.dimensions]
    names = [*fields, *METRICS, *RATIOS]
    offset = len(fields)
    found = fetch_groups(query, scope)
    rows = [dict(zip(names, (*values, *_ratios(values, offset)))) for values in found]  # noqa: B905 (same length)
    if "publisher_id" in fields:
        for row in rows:
            row["publisher_id"] = row["publisher_id"] or None  # "" is traffic without a publisher
    # The totals are the columns' sums (over no row, zeros).
    sums = [sum(column) for column in list(zip(*found, strict=True))[offset:]] if found else [0] * len(METRICS)
    totals = dict(zip((*METRICS, *RATIOS), (*sums, *_ratios(sums, 0)), strict=True))
    return Report(query.dimensions, rows, totals)


_IMPRESSIONS, _CLICKS, _LEADS, _DELIVERED, _RETURNED, _SPEND = (
    METRICS.index(name) for name in ("impressions", "clicks", "leads", "delivered", "returned", "spend_cents")
)


def _ratios(values: Sequence[int], offset: int) -> tuple[float | None, float | None, int | None]:
    """``RATIOS`` from the counts at ``values[offset:]`` (in ``METRICS`` order); a ratio whose
    denominator is zero is null, never an error."""
    impressions = values[offset + _IMPRESSIONS]
    billed = values[offset + _DELIVERED] - values[offset + _RETURNED]
    return (
        round(values[offset + _CLICKS] / impressions, 6) if impressions else None,
        round(values[offset + _LEADS] / impressions, 6) if impressions else None,
        round(values[offset + _SPEND] / billed) if billed > 0 else None,
    )


def report_json(report: Report) -> bytes:
    return orjson.dumps({"rows": report.rows, "totals": report.totals})


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def csv_columns(dimensions: Iterable[str]) -> list[str]:
    return [_DIMENSION_FIELDS[name] for name in dimensions] + [*METRICS, *RATIOS]


def report_csv(report: Report) -> str:
    """A header row, then one row per group: the grouped dimensions, the counts and the ratios."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    columns = csv_columns(report.dimensions)
    writer.writerow(columns)
    for row in report.rows:
        writer.writerow([_cell(row[column]) for column in columns])
    return out.getvalue()


def render_table(report: Report) -> str:
    """The report as aligned text for a terminal: one line per row, then the totals."""
    columns = csv_columns(report.dimensions)
    dimension_count = len(report.dimensions)
    lines = [[_cell(row[column]) for column in columns] for row in report.rows]
    lines.append(
        ["total"] + [""] * (dimension_count - 1) + [_cell(report.totals[c]) for c in columns[dimension_count:]]
    )
    widths = [max(len(column), *(len(line[i]) for line in lines)) for i, column in enumerate(columns)]
    out = ["  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True))]
    out += ["  ".join(cell.rjust(width) if i >= dimension_count else cell.ljust(width)
                      for i, (cell, width) in enumerate(zip(line, widths, strict=True))) for line in lines]  # fmt: skip
    return "\n".join(out)
