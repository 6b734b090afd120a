"""Impressions and clicks, persisted in batches from the Redis event streams and deleted after
``EVENT_RETENTION_DAYS``; reports read the rollups they were added to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from adserver.models.base import Base, UTCDateTime


class Impression(Base):
    """A served ad. Reports read rollups, not these rows: only the time is indexed (for retention)."""

    __tablename__ = "impressions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    publisher_id: Mapped[str | None] = mapped_column(String(40))
    campaign_id: Mapped[str] = mapped_column(String(40))
    ad_id: Mapped[str] = mapped_column(String(40))
    school_id: Mapped[str] = mapped_column(String(40))
    rank: Mapped[int] = mapped_column(Integer)
    pricing_model: Mapped[str] = mapped_column(String(3))
    bid_cents: Mapped[int] = mapped_column(Integer)
    postal_code: Mapped[str] = mapped_column(String(10))
    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str] = mapped_column(String(2))
    interest: Mapped[str | None] = mapped_column(String(64))
    visitor_id: Mapped[str | None] = mapped_column(String(128))
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False)


class Click(Base):
    """Every click on an ad link. ``counted`` marks the one click per impression that counts (and,
    for CPC, is billed): not a declared bot or prefetch, not a repeat, not from an expired link."""

    __tablename__ = "clicks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    impression_id: Mapped[str] = mapped_column(String(40), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    publisher_id: Mapped[str | None] = mapped_column(String(40))
    campaign_id: Mapped[str] = mapped_column(String(40), index=True)
    ad_id: Mapped[str] = mapped_column(String(40))
    school_id: Mapped[str] = mapped_column(String(40))
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    counted: Mapped[bool] = mapped_column(Boolean, default=False)
    spend_cents: Mapped[int] = mapped_column(Integer, default=0)
