"""Leads, with their consent record and delivery job (the outbox), and delivery attempts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from adserver.ids import new_id
from adserver.models.base import Base, UTCDateTime, utcnow

# The condition of the due-job index, written as a literal: a planner can use a partial index only
# for a query whose condition it can see matches (a bound parameter does not).
PENDING_DELIVERY = text("delivery_state = 'pending'")


class Lead(Base):
    """A "request info" submission. Personal fields are encrypted; *_hash are keyed hashes for duplicate checks."""

    __tablename__ = "leads"
    __table_args__ = (
        # Duplicate checks: this person at this school in the last 30 days.
        Index("ix_leads_school_email_hash", "school_id", "email_hash", "created_at"),
        Index("ix_leads_school_phone_hash", "school_id", "phone_hash", "created_at"),
        Index("ix_leads_campaign_created", "campaign_id", "created_at"),
        Index("ix_leads_school_created", "school_id", "created_at"),  # the school's feed, in order
        # The sweeper's pending jobs; a delivered lead leaves this index.
        Index(
            "ix_leads_delivery_due", "next_attempt_at", sqlite_where=PENDING_DELIVERY, postgresql_where=PENDING_DELIVERY
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("lead"))
    status: Mapped[str] = mapped_column(String(12), default="accepted")
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    school_id: Mapped[str] = mapped_column(ForeignKey("schools.id"))
    publisher_id: Mapped[str | None] = mapped_column(ForeignKey("publishers.id"))
    ad_id: Mapped[str | None] = mapped_column(String(40))
    # The id of the request that submitted the lead (X-Request-Id), which its delivery's log lines carry.
    request_id: Mapped[str | None] = mapped_column(String(64))
    impression_id: Mapped[str | None] = mapped_column(String(40))
    program_id: Mapped[str | None] = mapped_column(ForeignKey("programs.id"))
    price_cents: Mapped[int] = mapped_column(Integer)
    pricing_model: Mapped[str] = mapped_column(String(3))

    first_name_enc: Mapped[str] = mapped_column(Text)
    last_name_enc: Mapped[str] = mapped_column(Text)
    email_enc: Mapped[str] = mapped_column(Text)
    phone_enc: Mapped[str] = mapped_column(Text)
    postal_code_enc: Mapped[str] = mapped_column(Text)
    email_hash: Mapped[str] = mapped_column(String(64))
    phone_hash: Mapped[str] = mapped_column(String(64))
    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str] = mapped_column(String(2))
    education_level: Mapped[str] = mapped_column(String(16))
    graduation_year: Mapped[int | None] = mapped_column(Integer)
    birth_year: Mapped[int | None] = mapped_column(Integer)
    military: Mapped[bool] = mapped_column(Boolean, default=False)
    rn_license: Mapped[bool] = mapped_column(Boolean, default=False)

    consent_text: Mapped[str] = mapped_column(Text)
    consent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    consent_ip_enc: Mapped[str] = mapped_column(Text)
    consent_user_agent: Mapped[str | None] = mapped_column(Text)
    consent_page_url: Mapped[str | None] = mapped_column(Text)

    rejection_reason: Mapped[str | None] = mapped_column(Text)
    return_reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Set when the person asked to be opted out (the schools that may have the lead are told once) and
    # when the lead's personal data was erased (its personal columns are then empty).
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # The delivery job, written with the lead (None for a pull school, whose leads wait in its feed);
    # a worker claims it before sending. pending -> (claimed) -> done | given_up, or cancelled (an opt-out)
    delivery_state: Mapped[str | None] = mapped_column(String(12))
    attempt_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    attempts: Mapped[list[DeliveryAttempt]] = relationship(order_by="DeliveryAttempt.number")


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    http_status: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(12))  # delivered | rejected | retry | failed
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
