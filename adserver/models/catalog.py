"""Schools with campuses and programs, campaigns, ads and publishers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Date, ForeignKey, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from adserver.ids import new_id
from adserver.models.base import Base, UTCDateTime, utcnow


class School(Base):
    __tablename__ = "schools"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("sch"))
    name: Mapped[str] = mapped_column(String(200))
    website: Mapped[str | None] = mapped_column(String(2048))
    logo_url: Mapped[str | None] = mapped_column(String(2048))
    timezone: Mapped[str] = mapped_column(String(64))
    consent_text: Mapped[str] = mapped_column(Text)
    delivery_method: Mapped[str] = mapped_column(String(16), default="pull")
    delivery_url: Mapped[str | None] = mapped_column(String(2048))
    delivery_format: Mapped[str] = mapped_column(String(8), default="json")
    delivery_field_map: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    delivery_max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    delivery_timeout_s: Mapped[int] = mapped_column(Integer, default=10)
    # The whsec_ signing secret, encrypted with ENCRYPTION_KEY (it must be usable, so not hashed).
    delivery_secret_encrypted: Mapped[str] = mapped_column(Text)
    # After a rotation, the secret it replaced, still signing (beside the new one) until the moment given.
    delivery_secret_previous_encrypted: Mapped[str | None] = mapped_column(Text)
    delivery_secret_previous_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    campuses: Mapped[list[Campus]] = relationship(
        back_populates="school", cascade="all, delete-orphan", order_by="Campus.id"
    )
    programs: Mapped[list[Program]] = relationship(
        back_populates="school", cascade="all, delete-orphan", order_by="Program.id"
    )


class Campus(Base):
    __tablename__ = "campuses"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("cmp"))
    school_id: Mapped[str] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    postal_code: Mapped[str] = mapped_column(String(10))
    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str] = mapped_column(String(2))
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]

    school: Mapped[School] = relationship(back_populates="campuses")


class Program(Base):
    __tablename__ = "programs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("prg"))
    school_id: Mapped[str] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    interest: Mapped[str] = mapped_column(String(64))
    degree_level: Mapped[str] = mapped_column(String(16))
    modality: Mapped[str] = mapped_column(String(8))

    school: Mapped[School] = relationship(back_populates="programs")


campaign_programs = Table(
    "campaign_programs",
    Base.metadata,
    Column("campaign_id", ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
    Column("program_id", ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True),
)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("cpn"))
    school_id: Mapped[str] = mapped_column(ForeignKey("schools.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(8), default="draft")
    pricing_model: Mapped[str] = mapped_column(String(3))
    bid_cents: Mapped[int] = mapped_column(Integer)
    daily_budget_cents: Mapped[int | None] = mapped_column(Integer)
    total_budget_cents: Mapped[int | None] = mapped_column(Integer)
    leads_per_day: Mapped[int | None] = mapped_column(Integer)
    leads_per_month: Mapped[int | None] = mapped_column(Integer)
    flight_start: Mapped[date | None] = mapped_column(Date)
    flight_end: Mapped[date | None] = mapped_column(Date)
    flight_days: Mapped[list[str]] = mapped_column(JSON)
    flight_hour_start: Mapped[int] = mapped_column(Integer, default=0)
    flight_hour_end: Mapped[int] = mapped_column(Integer, default=24)
    # Lists of slugs/codes; an empty list means "any". radius_miles is kept beside them.
    targeting: Mapped[dict[str, Any]] = mapped_column(JSON)
    eligibility: Mapped[dict[str, Any]] = mapped_column(JSON)
    publishers_allow: Mapped[list[str]] = mapped_column(JSON, default=list)
    publishers_deny: Mapped[list[str]] = mapped_column(JSON, default=list)
    impressions_per_day: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    school: Mapped[School] = relationship()
    programs: Mapped[list[Program]] = relationship(secondary=campaign_programs, order_by="Program.id")
    ads: Mapped[list[Ad]] = relationship(back_populates="campaign", order_by="Ad.id")


class Ad(Base):
    __tablename__ = "ads"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ad"))
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), index=True)
    headline: Mapped[str] = mapped_column(String(200))
    bullets: Mapped[list[str]] = mapped_column(JSON, default=list)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    badge: Mapped[str | None] = mapped_column(String(80))
    landing_url: Mapped[str] = mapped_column(String(2048))
    status: Mapped[str] = mapped_column(String(8), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    campaign: Mapped[Campaign] = relationship(back_populates="ads")


class Publisher(Base):
    __tablename__ = "publishers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("pub"))
    name: Mapped[str] = mapped_column(String(200))
    domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ApiKey(Base):
    """An API key, kept only as the SHA-256 of its secret."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("key"))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters ("sk_live_ab...") so an operator can tell keys apart.
    display_prefix: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))  # admin | school | publisher
    kind: Mapped[str] = mapped_column(String(12))  # secret | publishable
    school_id: Mapped[str | None] = mapped_column(ForeignKey("schools.id"), index=True)
    publisher_id: Mapped[str | None] = mapped_column(ForeignKey("publishers.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdempotencyRecord(Base):
    """The first answer to a mutating POST sent with an Idempotency-Key, kept a day, sealed (an answer
    can hold a secret shown once)."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("principal", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    principal: Mapped[str] = mapped_column(String(80))
    key: Mapped[str] = mapped_column(String(255))
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body_enc: Mapped[str | None] = mapped_column(Text)
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
