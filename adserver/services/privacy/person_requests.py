"""A person's opt-out and erasure requests.

An opt-out adds the keyed hashes of the person's email and phone to the opt-out list, which intake
then refuses (``services.leads.intake``); suppresses their leads still waiting for delivery, which a
worker then cannot claim; and gives each school that may have one of their leads from the last five
years one notice naming those leads (``notices``). Erasure does all that, then destroys everything
personal in the person's leads. Each request runs in one transaction that holds every school's
intake lock, so no lead of the person is accepted while it runs, and locks the person's leads, so
no worker claims one meanwhile. Both are idempotent: each lead is handled once (``opted_out_at``),
and an erased lead no longer matches anyone. Every request is audited without naming the person.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from adserver import clock
from adserver.extensions import db
from adserver.ids import new_id
from adserver.models import DeliveryAttempt, Lead, OptOut, OptOutNotice, PrivacyRequest, School
from adserver.services.leads import statuses
from adserver.services.leads.personal_data import ERASED_COLUMNS, email_hash, phone_hash
from adserver.services.privacy.notices import enqueue_notice

log = logging.getLogger(__name__)

# Schools are told of the person's leads they received in this long before the request.
NOTICE_LOOKBACK = timedelta(days=5 * 365 + 2)


@dataclass(frozen=True, slots=True)
class Person:
    """Whom a request is for, by the keyed hashes intake keeps of emails and phones (never the values)."""

    email_hash: str | None
    phone_hash: str | None

    @classmethod
    def named(cls, email: str | None, phone: str | None) -> Person:
        """``email`` and ``phone`` validated as a lead's are (``schemas.leads.Email`` and ``Phone``)."""
        return cls(email_hash(email) if email else None, phone_hash(phone) if phone else None)

    def matches(self) -> list[ColumnElement[bool]]:
        """The conditions that find the person's leads, one per hash."""
        return [column == value for column, value in ((Lead.email_hash, self.email_hash),
                                                      (Lead.phone_hash, self.phone_hash)) if value]  # fmt: skip


def opt_out(person: Person, requested_by: str) -> int:
    """Opt the person out: no new lead of theirs is accepted, none pending is delivered, and the schools
    that may have one are told. Returns how many of the person's leads were found."""
    return _handle("opt_out", person, requested_by)


def erase(person: Person, requested_by: str) -> int:
    """Opt the person out, then destroy the personal data of every lead of theirs: the lead keeps its
    ids, campaign, times, consent text and time, price and status. Returns how many leads were erased
    (none on a repeat: an erased lead no longer matches)."""
    return _handle("erase", person, requested_by)


def _handle(kind: str, person: Person, requested_by: str) -> int:
    delivery_methods = _lock_intake()
    now = clock.now()  # taken after the locks, as intake takes its own
    _add_to_opt_out_list(person, now)
    leads = _lock_leads_of(person, list(delivery_methods))
    notices = _opt_out_leads(leads, delivery_methods, now)
    if kind == "erase" and leads:
        _erase([lead.id for lead in leads], now)
    audit = PrivacyRequest(id=new_id("prq"), kind=kind, requested_by=requested_by, requested_at=now,
                           leads_affected=len(leads), notices=len(notices))  # fmt: skip
    db.session.add(audit)
    to_send = [notice.id for notice in notices if notice.delivery_state == "pending"]
    db.session.commit()
    log.info("privacy request", extra={"privacy_request_id": audit.id, "kind": kind, "leads_affected": len(leads),
                                       "notices": len(notices)})  # fmt: skip
    for notice_id in to_send:
        enqueue_notice(notice_id)
    return len(leads)


def _lock_intake() -> dict[str, str]:
    """Lock every school's row, the lock intake takes before it checks the opt-out list and writes a lead
    (SQLite's transactions take the one write lock instead). Returns each school's delivery method."""
    rows = db.session.execute(select(School.id, School.delivery_method).order_by(School.id).with_for_update())
    return {row.id: row.delivery_method for row in rows}


def _add_to_opt_out_list(person: Person, now: datetime) -> None:
    rows = [{"hash": value, "kind": kind, "created_at": now}
            for kind, value in (("email", person.email_hash), ("phone", person.phone_hash)) if value]  # fmt: skip
    insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
    db.session.execute(insert(OptOut).values(rows).on_conflict_do_nothing(index_elements=["hash"]))


def leads_matching(match: ColumnElement[bool], school_ids: list[str]) -> Select[Any]:
    """The leads ``match`` finds (one hash). Every school is named, so that the hash is looked up in the
    duplicate checks' (school_id, hash) index: an opt-out needs no index of its own for intake to write."""
    return select(
        Lead.id, Lead.school_id, Lead.delivery_state, Lead.attempt_count, Lead.claimed_until, Lead.created_at,
        Lead.opted_out_at,
    ).where(Lead.school_id.in_(school_ids), match)  # fmt: skip


def _lock_leads_of(person: Person, school_ids: list[str]) -> list[Row[Any]]:
    """The person's leads that still carry their email or phone, locked. One query per hash: a planner
    reads an OR of the two through neither index."""
    found: dict[str, Row[Any]] = {}
    for match in person.matches():
        found.update((row.id, row) for row in db.session.execute(leads_matching(match, school_ids).with_for_update()))
    return list(found.values())


def _may_have_reached_school(lead: Row[Any], now: datetime) -> bool:
    """A pull school's lead is in its feed from acceptance; a pushed lead once an attempt was made or while
    one is in flight (a timeout may still have arrived)."""
    in_flight = lead.claimed_until is not None and lead.claimed_until >= now
    return lead.delivery_state != "pending" or lead.attempt_count > 0 or in_flight


def _opt_out_leads(leads: list[Row[Any]], delivery_methods: dict[str, str], now: datetime) -> list[OptOutNotice]:
    """Suppress the leads not yet delivered, mark every lead opted out, and add one notice per school that
    may have one of them. Leads opted out by an earlier request are left as they are."""
    fresh = [lead for lead in leads if lead.opted_out_at is None]
    if not fresh:
        return []
    pending = [lead.id for lead in fresh if lead.delivery_state == "pending"]
    if pending:
        # A worker mid-send keeps its lease no more: its result is not recorded over the suppression.
        statuses.change_status(
            and_(Lead.id.in_(pending), Lead.delivery_state == "pending"), statuses.SUPPRESSED, now,
            delivery_state="cancelled", next_attempt_at=None, claimed_by=None, claimed_until=None,
        )  # fmt: skip
    db.session.execute(
        update(Lead).where(Lead.id.in_([lead.id for lead in fresh])).values(opted_out_at=now)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    received: dict[str, list[str]] = defaultdict(list)
    for lead in fresh:
        if lead.created_at >= now - NOTICE_LOOKBACK and _may_have_reached_school(lead, now):
            received[lead.school_id].append(lead.id)
    notices = []
    for school_id, lead_ids in sorted(received.items()):
        pushed = delivery_methods[school_id] == "http_post"
        notices.append(
            OptOutNotice(id=new_id("ntc"), school_id=school_id, lead_ids=sorted(lead_ids), requested_at=now,
                         delivery_state="pending" if pushed else None, attempt_count=0,
                         next_attempt_at=now if pushed else None)
        )  # fmt: skip
    db.session.add_all(notices)
    return notices


def _erase(lead_ids: list[str], now: datetime) -> None:
    """Destroy the leads' personal data, and what schools answered about them (it may echo it)."""
    db.session.execute(
        update(Lead).where(Lead.id.in_(lead_ids)).values(erased_at=now, updated_at=now, **ERASED_COLUMNS)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    db.session.execute(
        update(DeliveryAttempt).where(DeliveryAttempt.lead_id.in_(lead_ids)).values(error=None)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
