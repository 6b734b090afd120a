"""Privacy requests: the opt-out list, the audit of each request, and the notices sent to schools."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from adserver.ids import new_id
from adserver.models.base import Base, UTCDateTime, utcnow

# The condition of the due-notice index, a literal for the same reason as the leads' (models.leads).
PENDING_NOTICE = text("delivery_state = 'pending'")


class OptOut(Base):
    """One opted-out email or phone, kept only as the keyed hash intake computes for it (never the value)."""

    __tablename__ = "opt_outs"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # email | phone
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PrivacyRequest(Base):
    """The audit of an opt-out or erase request: who asked, when, and how many leads it touched.
    Nothing personal: the person is not named, not even by a hash."""

    __tablename__ = "privacy_requests"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("prq"))
    kind: Mapped[str] = mapped_column(String(8))  # opt_out | erase
    requested_by: Mapped[str] = mapped_column(String(80))  # the admin key's id
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    leads_affected: Mapped[int] = mapped_column(Integer)
    notices: Mapped[int] = mapped_column(Integer)


class OptOutNotice(Base):
    """A school's notice that a person opted out, naming the leads of that person it may have received.
    An ``http_post`` school is sent it signed, as leads are (the job's columns mirror the lead's); every
    school reads its notices at ``GET /v1/opt-outs``."""

    __tablename__ = "opt_out_notices"
    __table_args__ = (
        Index("ix_opt_out_notices_school_requested", "school_id", "requested_at"),
        Index(
            "ix_opt_out_notices_due", "next_attempt_at", sqlite_where=PENDING_NOTICE, postgresql_where=PENDING_NOTICE
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ntc"))
    school_id: Mapped[str] = mapped_column(ForeignKey("schools.id"))
    lead_ids: Mapped[list[Any]] = mapped_column(JSON)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # pending -> (claimed) -> delivered | rejected | failed; None for a pull school.
    delivery_state: Mapped[str | None] = mapped_column(String(12))
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OptOutNoticeAttempt(Base):
    __tablename__ = "opt_out_notice_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notice_id: Mapped[str] = mapped_column(ForeignKey("opt_out_notices.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    http_status: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(12))  # delivered | rejected | retry | failed
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
