"""Rollups: what reports read. Each fact (a persisted impression or click, a lead accepted, a
lead's outcome) adds to its row at every level in the transaction that records it.

The levels: per hour, and per day, by campaign, ad and publisher (``""`` for traffic without a
publisher); and per day by campaign alone, which a report that neither groups nor filters by
publisher reads (a third or less of the daily rows, one per campaign and day). The school is the
campaign's. Lead counts and their outcomes sit in the bucket of the hour the lead was accepted, so a
row's ``delivered + rejected + failed`` never exceeds its ``leads``, and ``returned`` never exceeds
``delivered``.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Integer, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from adserver.models.base import Base, UTCDateTime

# Every counted figure of a rollup row, in the order reports show them.
METRICS = (
    "impressions", "bot_impressions", "clicks", "bot_clicks", "leads",
    "delivered", "rejected", "failed", "returned", "spend_cents",
)  # fmt: skip


# Ids are ASCII: PostgreSQL compares them byte by byte ("C") rather than by language rules, several
# times faster in the keys' index and in a report's grouping.
RollupId = String(40).with_variant(String(40, collation="C"), "postgresql")


class _Figures:
    campaign_id: Mapped[str] = mapped_column(RollupId)
    school_id: Mapped[str] = mapped_column(RollupId)
    impressions: Mapped[int] = mapped_column(Integer, default=0)
    bot_impressions: Mapped[int] = mapped_column(Integer, default=0)
    clicks: Mapped[int] = mapped_column(Integer, default=0)  # counted: one per impression, not a bot's
    bot_clicks: Mapped[int] = mapped_column(Integer, default=0)
    leads: Mapped[int] = mapped_column(Integer, default=0)  # accepted
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    returned: Mapped[int] = mapped_column(Integer, default=0)
    # Billed: the CPC bid per counted click, the CPL bid per lead delivered and not returned.
    spend_cents: Mapped[int] = mapped_column(BigInteger, default=0)


class _ByAdAndPublisher(_Figures):
    ad_id: Mapped[str] = mapped_column(RollupId)
    publisher_id: Mapped[str] = mapped_column(RollupId)  # "" when none


class HourlyRollup(_ByAdAndPublisher, Base):
    __tablename__ = "rollup_hourly"
    # The time bucket first: reports and the retention of old rows read ranges of it.
    __table_args__ = (PrimaryKeyConstraint("hour", "campaign_id", "ad_id", "publisher_id"),)

    hour: Mapped[datetime] = mapped_column(UTCDateTime)  # UTC, on the hour


class DailyRollup(_ByAdAndPublisher, Base):
    __tablename__ = "rollup_daily"
    # On PostgreSQL the key's index also carries every figure, so a report reads the index alone, in
    # (day, campaign) order: no table access and no sort.
    __table_args__ = (
        PrimaryKeyConstraint("day", "campaign_id", "ad_id", "publisher_id",
                             postgresql_include=["school_id", *METRICS]),
    )  # fmt: skip

    day: Mapped[date] = mapped_column(Date)  # UTC


class CampaignDailyRollup(_Figures, Base):
    __tablename__ = "rollup_campaign_daily"
    # As the daily key's index: a report by day and campaign reads this index alone, one entry per group.
    __table_args__ = (PrimaryKeyConstraint("day", "campaign_id", postgresql_include=["school_id", *METRICS]),)

    day: Mapped[date] = mapped_column(Date)  # UTC
