"""What the dashboard shows for an admin or a school over a date range: the report's totals and
its figures per day, a line for every campaign in the scope (one without traffic in the range
too), and the latest failed or rejected deliveries.

Every figure comes from ``build_report`` (the rollups), so the dashboard and ``GET /v1/reports``
agree; this module adds what the catalog and the leads know: names, statuses, reasons.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select

from adserver.extensions import db
from adserver.models import Campaign, Lead, School
from adserver.models.rollups import METRICS
from adserver.schemas.reports import ReportFigures, ReportQuery
from adserver.services.reporting.reports import Report, Scope, build_report, figures
from adserver.spreadsheet import spreadsheet_cell

FAILED_DELIVERIES_SHOWN = 20
NO_FIGURES = ReportFigures(**figures(dict.fromkeys(METRICS, 0)))


@dataclass(frozen=True, slots=True)
class DayFigures:
    day: date
    impressions: int
    clicks: int
    leads: int


@dataclass(frozen=True, slots=True)
class CampaignLine:
    campaign_id: str
    name: str
    school_name: str
    status: str
    figures: ReportFigures

    @property
    def delivery_success(self) -> float | None:
        """Of the leads whose delivery settled, the share delivered; None when none settled."""
        settled = self.figures.delivered + self.figures.rejected + self.figures.failed
        return round(self.figures.delivered / settled, 6) if settled else None


@dataclass(frozen=True, slots=True)
class FailedDelivery:
    lead_id: str
    accepted_at: datetime
    campaign_name: str
    school_name: str
    status: str  # failed | rejected
    attempts: int
    reason: str | None


@dataclass(frozen=True, slots=True)
class Overview:
    totals: ReportFigures
    days: list[DayFigures]
    campaigns: list[CampaignLine]
    failed_deliveries: list[FailedDelivery]


def _report(start: date, end: date, group_by: str, scope: Scope) -> Report:
    return build_report(ReportQuery.model_validate({"from": start, "to": end, "group_by": group_by}), scope)


def _every_day(report: Report, start: date, end: date) -> list[DayFigures]:
    """One entry per day of the range, days without traffic at zero, so a chart's days are evenly spaced."""
    by_day = {row["day"]: row for row in report.rows}
    days = []
    for offset in range((end - start).days + 1):
        day = start + timedelta(days=offset)
        row = by_day.get(day)
        days.append(
            DayFigures(day, row["impressions"], row["clicks"], row["leads"]) if row else DayFigures(day, 0, 0, 0)
        )
    return days


def campaign_lines(start: date, end: date, scope: Scope) -> list[CampaignLine]:
    """Every campaign in the scope (a school's, or all), by school and name, with its figures over the range."""
    by_campaign = {row["campaign_id"]: ReportFigures.model_validate(row)
                   for row in _report(start, end, "campaign", scope).rows}  # fmt: skip
    statement = select(Campaign.id, Campaign.name, Campaign.status, School.name.label("school_name")).join(School)
    if scope.school_id is not None:
        statement = statement.where(Campaign.school_id == scope.school_id)
    rows = db.session.execute(statement.order_by(School.name, Campaign.name, Campaign.id)).all()
    return [CampaignLine(row.id, row.name, row.school_name, row.status, by_campaign.get(row.id, NO_FIGURES))
            for row in rows]  # fmt: skip


def latest_failed_deliveries(scope: Scope, limit: int = FAILED_DELIVERIES_SHOWN) -> list[FailedDelivery]:
    """The latest leads (by acceptance, which the leads' indexes keep in order) whose delivery
    failed or was rejected, with the reason the school's answer or the last attempt gave."""
    statement = (
        select(Lead.id, Lead.created_at, Lead.status, Lead.attempt_count, Lead.rejection_reason,
               Campaign.name.label("campaign_name"), School.name.label("school_name"))
        .join(Campaign, Campaign.id == Lead.campaign_id)
        .join(School, School.id == Lead.school_id)
        .where(Lead.status.in_(("failed", "rejected")))
        .order_by(Lead.created_at.desc(), Lead.id.desc())
        .limit(limit)
    )  # fmt: skip
    if scope.school_id is not None:
        statement = statement.where(Lead.school_id == scope.school_id)
    return [FailedDelivery(row.id, row.created_at, row.campaign_name, row.school_name, row.status,
                           row.attempt_count, row.rejection_reason)
            for row in db.session.execute(statement)]  # fmt: skip


CSV_COLUMNS = ("campaign_id", "campaign", "school", "status", "impressions", "clicks", "ctr", "leads", "lead_rate",
               "delivered", "returned", "spend_cents", "cpl_cents", "delivery_success")  # fmt: skip


def campaign_csv(lines: list[CampaignLine]) -> str:
    """The campaign table as CSV: a header row, then a row per campaign; money in cents, ratios as fractions."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for line in lines:
        data = {**line.figures.model_dump(), "campaign_id": line.campaign_id, "campaign": line.name,
                "school": line.school_name, "status": line.status,
                "delivery_success": line.delivery_success}  # fmt: skip
        writer.writerow([spreadsheet_cell(data[column]) for column in CSV_COLUMNS])
    return out.getvalue()


def build_overview(start: date, end: date, scope: Scope) -> Overview:
    """The dashboard's figures for ``start``..``end`` (UTC days, both included) within ``scope``."""
    daily = _report(start, end, "day", scope)
    overview = Overview(
        totals=ReportFigures.model_validate(daily.totals),
        days=_every_day(daily, start, end),
        campaigns=campaign_lines(start, end, scope),
        failed_deliveries=latest_failed_deliveries(scope),
    )
    db.session.rollback()  # reads only: end the transaction rather than hold it open
    return overview
