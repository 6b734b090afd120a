"""Report request and response models: ``GET /v1/reports``."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, field_validator

from adserver.schemas.common import Id, In, Out

GROUPS = ("day", "campaign", "school", "publisher")


class ReportQuery(In):
    from_: date = Field(alias="from", description="First day, inclusive (UTC), e.g. 2026-11-01.")
    to: date = Field(description="Last day, inclusive (UTC); at most 400 days after `from`.")
    group_by: str = Field(
        "day", description="Comma-separated dimensions, any of `day`, `campaign`, `school`, `publisher`.",
        pattern=r"^(day|campaign|school|publisher)(,(day|campaign|school|publisher))*$", max_length=40,
    )  # fmt: skip
    campaign_id: Id | None = None
    school_id: Id | None = None
    publisher_id: Id | None = None
    format: Literal["json", "csv"] | None = Field(None, description="`csv` (or `Accept: text/csv`) for CSV.")

    @field_validator("group_by")
    @classmethod
    def _known_dimensions(cls, value: str) -> str:
        parts = value.split(",")
        unknown = [part for part in parts if part not in GROUPS]
        if unknown:
            raise ValueError(f"unknown dimension {unknown[0]!r}; use any of {', '.join(GROUPS)}")
        if len(set(parts)) != len(parts):
            raise ValueError("a dimension is repeated")
        return value

    @property
    def dimensions(self) -> tuple[str, ...]:
        return tuple(self.group_by.split(","))


class ReportFigures(Out):
    impressions: int = Field(description="Served to people: bot-flagged impressions excluded.")
    bot_impressions: int
    clicks: int = Field(description="Counted clicks: one per impression, bots, prefetches and repeats excluded.")
    bot_clicks: int
    leads: int = Field(description="Leads accepted.")
    delivered: int = Field(description="Of those leads, delivered (a pull school's when accepted).")
    rejected: int
    failed: int
    returned: int
    spend_cents: int = Field(description="Billed: the CPC bid per counted click, the CPL bid per lead delivered "
                                         "and not returned.")  # fmt: skip
    ctr: float | None = Field(description="clicks / impressions; null when there were no impressions.")
    lead_rate: float | None = Field(description="leads / impressions; null when there were no impressions.")
    cpl_cents: int | None = Field(description="spend per lead delivered and not returned; null when none.")


class _Dimensions(Out):
    day: date | None = Field(None, description="With `group_by` day.")
    campaign_id: str | None = Field(None, description="With `group_by` campaign.")
    school_id: str | None = Field(None, description="With `group_by` school.")
    publisher_id: str | None = Field(None, description="With `group_by` publisher; null for traffic without one.")


class ReportRow(ReportFigures, _Dimensions):
    """One row per combination of the grouped dimensions; only those dimensions are present."""


class ReportResponse(Out):
    rows: list[ReportRow]
    totals: ReportFigures
