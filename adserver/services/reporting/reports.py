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

from sqlalchemy import ColumnElement, func, select

from adserver.auth import Principal
from adserver.errors import validation_error
from adserver.extensions import db
from adserver.models.rollups import METRICS, DailyRollup
from adserver.schemas.reports import ReportFigures, ReportQuery, ReportRow

MAX_DAYS = 400
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
    dimensions: tuple[str, ...]
    rows: list[ReportRow]
    totals: ReportFigures


def check_range(start: date, end: date) -> None:
    """422 naming the field: ``from`` after ``to``, or more than ``MAX_DAYS`` days."""
    if start > end:
        raise validation_error({"from": "must not be after `to`"})
    if (end - start).days + 1 > MAX_DAYS:
        raise validation_error({"to": f"the range is more than {MAX_DAYS} days"})


def figures(counts: Mapping[str, int]) -> dict[str, Any]:
    """The counts with their ratios; a ratio whose denominator is zero is null, never an error."""
    impressions, billed = counts["impressions"], counts["delivered"] - counts["returned"]
    return {
        **{name: int(counts[name]) for name in METRICS},
        "ctr": round(counts["clicks"] / impressions, 6) if impressions else None,
        "lead_rate": round(counts["leads"] / impressions, 6) if impressions else None,
        "cpl_cents": round(counts["spend_cents"] / billed) if billed > 0 else None,
    }


def _filters(query: ReportQuery, scope: Scope) -> list[ColumnElement[bool]]:
    where = [DailyRollup.day >= query.from_, DailyRollup.day <= query.to]
    for column, wanted in ((DailyRollup.campaign_id, query.campaign_id), (DailyRollup.school_id, query.school_id),
                           (DailyRollup.publisher_id, query.publisher_id), (DailyRollup.school_id, scope.school_id),
                           (DailyRollup.publisher_id, scope.publisher_id)):  # fmt: skip
        if wanted is not None:
            where.append(column == wanted)
    return where


def build_report(query: ReportQuery, scope: Scope) -> Report:
    """The figures of every group in the range, and their totals."""
    check_range(query.from_, query.to)
    dimensions = query.dimensions
    keys = [_DIMENSION_COLUMNS[name] for name in dimensions]
    sums = [func.coalesce(func.sum(getattr(DailyRollup, name)), 0).label(name) for name in METRICS]
    statement = select(*keys, *sums).where(*_filters(query, scope)).group_by(*keys).order_by(*keys)
    rows = []
    totals = dict.fromkeys(METRICS, 0)
    for row in db.session.execute(statement):
        counts = {name: int(getattr(row, name)) for name in METRICS}
        for name in METRICS:
            totals[name] += counts[name]
        values: dict[str, Any] = {
            _DIMENSION_FIELDS[name]: (value or None) if name == "publisher" else value
            for name, value in zip(dimensions, row[: len(keys)], strict=True)
        }
        rows.append(ReportRow(**values, **figures(counts)))
    db.session.rollback()
    return Report(dimensions, rows, ReportFigures(**figures(totals)))


def report_json(report: Report) -> str:
    """Rows carry only the grouped dimensions (``publisher_id`` null for traffic without a publisher)."""
    rows = ",".join(row.model_dump_json(exclude_unset=True) for row in report.rows)
    return f'{{"rows":[{rows}],"totals":{report.totals.model_dump_json()}}}'


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
        data = row.model_dump()
        writer.writerow([_cell(data.get(column)) for column in columns])
    return out.getvalue()


def render_table(report: Report) -> str:
    """The report as aligned text for a terminal: one line per row, then the totals."""
    columns = csv_columns(report.dimensions)
    lines = [[_cell(row.model_dump().get(column)) for column in columns] for row in report.rows]
    totals = report.totals.model_dump()
    dimension_count = len(report.dimensions)
    lines.append(["total"] + [""] * (dimension_count - 1) + [_cell(totals[c]) for c in columns[dimension_count:]])
    widths = [max(len(column), *(len(line[i]) for line in lines)) for i, column in enumerate(columns)]
    out = ["  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True))]
    out += ["  ".join(cell.rjust(width) if i >= dimension_count else cell.ljust(width)
                      for i, (cell, width) in enumerate(zip(line, widths, strict=True))) for line in lines]  # fmt: skip
    return "\n".join(out)
