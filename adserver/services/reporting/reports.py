"""Campaign reports: the daily rollups summed over a date range, grouped and filtered, within the
caller's scope (a school sees its own campaigns, a publisher its own traffic, an admin all).

Reports read rollups only, never raw events, so their cost follows the number of days and
campaigns asked for, not the traffic behind them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
from sqlalchemy import BigInteger, ColumnElement, cast, func, select, text

from adserver.auth import Principal
from adserver.errors import validation_error
from adserver.extensions import db
from adserver.models.rollups import METRICS, DailyRollup
from adserver.schemas.reports import ReportQuery

MAX_DAYS = 400
REPORT_WORK_MEM = "64MB"
RATIOS = ("ctr", "lead_rate", "cpl_cents")
_DIMENSION_COLUMNS = {
    "day": DailyRollup.day,
    "campaign": DailyRollup.campaign_id,
    "school": DailyRollup.school_id,
    "publisher": DailyRollup.publisher_id,
}
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
    return _with_ratios({name: int(counts[name]) for name in METRICS})


def _filters(query: ReportQuery, scope: Scope) -> list[ColumnElement[bool]]:
    where = [DailyRollup.day >= query.from_, DailyRollup.day <= query.to]
    for column, wanted in ((DailyRollup.campaign_id, query.campaign_id), (DailyRollup.school_id, query.school_id),
                           (DailyRollup.publisher_id, query.publisher_id), (DailyRollup.school_id, scope.school_id),
                           (DailyRollup.publisher_id, scope.publisher_id)):  # fmt: skip
        if wanted is not None:
            where.append(column == wanted)
    return where


def fetch_groups(query: ReportQuery, scope: Scope) -> list[Any]:
    """The query behind a report: one row per group, the grouped dimensions then the sums of ``METRICS``."""
    check_range(query.from_, query.to)
    keys = [_DIMENSION_COLUMNS[name] for name in query.dimensions]
    # SUM of a bigint is a numeric on PostgreSQL: cast back, so figures are ints everywhere.
    sums = [cast(func.coalesce(func.sum(getattr(DailyRollup, name)), 0), BigInteger) for name in METRICS]
    if db.engine.dialect.name == "postgresql":
        # The daily key's index carries every figure and is in (day, campaign) order: read it alone, in
        # order, rather than the table, hashed and sorted, which the planner would otherwise prefer
        # for a long range (and then sorted in memory, not on disk).
        db.session.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))
        db.session.execute(text("SET LOCAL enable_seqscan = off"))
    statement = select(*keys, *sums).where(*_filters(query, scope)).group_by(*keys).order_by(*keys)
    found = db.session.connection().execute(statement).all()  # Core rows: the ORM adds nothing here
    db.session.rollback()
    return list(found)


def build_report(query: ReportQuery, scope: Scope) -> Report:
    """The figures of every group in the range, in the order of the grouped dimensions, and their totals."""
    found = fetch_groups(query, scope)
    fields = [_DIMENSION_FIELDS[name] for name in query.dimensions]
    names = [*fields, *METRICS]
    publisher = "publisher_id" in fields
    rows = []
    for values in found:
        row = dict(zip(names, values, strict=True))
        if publisher:
            row["publisher_id"] = row["publisher_id"] or None  # "" is traffic without a publisher
        rows.append(_with_ratios(row))
    # The totals are the columns' sums (over no row, zeros).
    columns = list(zip(*found, strict=True))[len(fields) :] if found else [()] * len(METRICS)
    totals = {name: sum(column) for name, column in zip(METRICS, columns, strict=True)}
    return Report(query.dimensions, rows, _with_ratios(totals))


def _with_ratios(row: dict[str, Any]) -> dict[str, Any]:
    """The row's counts with their ratios added; a ratio whose denominator is zero is null."""
    impressions, billed = row["impressions"], row["delivered"] - row["returned"]
    row["ctr"] = round(row["clicks"] / impressions, 6) if impressions else None
    row["lead_rate"] = round(row["leads"] / impressions, 6) if impressions else None
    row["cpl_cents"] = round(row["spend_cents"] / billed) if billed > 0 else None
    return row


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
