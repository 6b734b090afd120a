"""Delivering accepted leads to schools' CRMs (``http_post``), at least once, never twice at a time.

A worker claims the lead's job (columns of its row) with a conditional UPDATE, so only one worker sends a
lead at a time; the claim is a lease that lapses if the worker dies. It builds the
body and signs it the Standard Webhooks way (``webhooks``) with a ``webhook-id`` that is the
same on every attempt, POSTs through the SSRF guard without following redirects
(``school_endpoint``), and records the attempt. A retry is a
``next_attempt_at`` in the database and, when it is soon, a delayed Celery
message too; the sweeper sends it if that message is lost.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, Select, and_, or_, select, update

from adserver import clock
from adserver.extensions import db, redis_client
from adserver.logs import bound_request_id
from adserver.metrics import shared as shared_metrics
from adserver.models import DeliveryAttempt, Lead, OptOutNotice, Program, School
from adserver.models.leads import PENDING_DELIVERY
from adserver.services.leads import statuses
from adserver.services.leads.personal_data import consent_ip, profile_fields
from adserver.services.leads.returns import lead_not_kept
from adserver.services.leads.school_endpoint import Answer, send_to_school
from adserver.services.leads.webhooks import encode_body, map_fields, signed_headers

log = logging.getLogger(__name__)

DELIVER_TASK = "adserver.leads.deliver"
# A claim outlives the longest send (connect and read timeouts) by this margin.
CLAIM_MARGIN_S = 5
# A message may arrive a little before next_attempt_at (clocks, countdown rounding).
EARLY_ARRIVAL_S = 1.0
# The sweeper leaves a due job this long to its own message before sending another.
SWEEP_GRACE_S = 10
MAX_RETRY_DELAY_S = 6 * 3600
# A longer retry is left to the sweeper: a countdown message that outlives the broker's
# visibility timeout would be handed out again and again while it waits.
MAX_COUNTDOWN_S = 300

# Intake's announcements of new delivery jobs (lead ids), for the relay.
OUTBOX_KEY = "leads:outbox"


def relay_announced_jobs(wait_s: float = 1.0, batch: int = 100) -> int:
    """Send the delivery task of every job intake announced (pushed on ``OUTBOX_KEY`` after its
    commit), waiting up to ``wait_s`` for the first; returns how many were sent. Each Celery
    worker runs this in a loop. An announcement lost with Redis leaves a pending job, which the
    sweeper sends."""
    client = redis_client.client
    first: tuple[bytes, bytes] | None = client.brpop([OUTBOX_KEY], timeout=wait_s)  # type: ignore[assignment]
    if first is None:
        return 0
    more: list[bytes] = client.rpop(OUTBOX_KEY, batch - 1) or []  # type: ignore[assignment]
    lead_ids = [raw.decode() for raw in (first[1], *more)]
    for lead_id in lead_ids:
        enqueue_delivery(lead_id)
    return len(lead_ids)


def enqueue_delivery(lead_id: str, countdown: float | None = None) -> bool:
    """Send the delivery task (the lead id only). A failure is logged, not raised: the job is in the
    database and the sweeper sends it."""
    celery = current_app.extensions["celery"]
    try:
        celery.send_task(DELIVER_TASK, args=[lead_id], countdown=countdown, retry=False)
    except Exception:
        log.warning("delivery task not sent; the sweeper will send it", extra={"lead_id": lead_id}, exc_info=True)
        return False
    return True


def lead_fields(lead: Lead, program_name: str | None) -> dict[str, Any]:
    """Every field of a lead under its own name (the names a school's field_map refers to)."""
    return {
        "id": lead.id,
        **profile_fields(lead),
        "program_id": lead.program_id,
        "program_name": program_name,
        "campaign_id": lead.campaign_id,
        "school_id": lead.school_id,
        "created_at": lead.created_at.isoformat(),
        "consent_text": lead.consent_text,
        "consent_at": lead.consent_at.isoformat(),
        "consent_ip": consent_ip(lead),
        "consent_user_agent": lead.consent_user_agent,
        "consent_page_url": lead.consent_page_url,
    }


def retry_delay_s(attempt: int, base_s: float, retry_after_s: float | None) -> float:
    """Exponential backoff from ``base_s`` (the first retry) with up to 25% jitter, never before
    the school's Retry-After."""
    backoff = float(base_s * (2 ** (attempt - 1)) * (1 + random.uniform(0, 0.25)))
    if retry_after_s is not None:
        backoff = max(backoff, retry_after_s)
    return min(backoff, MAX_RETRY_DELAY_S)


@dataclass(frozen=True, slots=True)
class _Prepared:
    lead_id: str
    request_id: str | None  # the submitting request's, for the attempt's log lines
    campaign_id: str
    accepted_at: datetime
    attempt: int
    max_attempts: int
    url: str
    timeout_s: int
    body: str
    headers: dict[str, str]


def new_claimant() -> str:
    """A claim's owner: this host and process, and one attempt."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


Job = type[Lead] | type[OptOutNotice]  # a row that carries a delivery job's columns


def unclaimed(job: Job, now: datetime) -> ColumnElement[bool]:
    """Nobody holds the job at ``now``: never claimed, or the claim's lease ran out."""
    return or_(job.claimed_until.is_(None), job.claimed_until < now)


def claim(job: Job, job_id: str, claimant: str, now: datetime, timeout_s: int, **also: Any) -> bool:
    """Claim the job for ``claimant`` if it is pending, due and unclaimed (a conditional UPDATE, so one
    worker at a time wins), setting ``also`` with it. The claim is a lease that outlives the longest
    send (the school's connect and read timeouts) by a margin, and lapses if the worker dies."""
    claimed = db.session.execute(
        update(job)
        .where(job.id == job_id, job.delivery_state == "pending",
               job.next_attempt_at <= now + timedelta(seconds=EARLY_ARRIVAL_S), unclaimed(job, now))
        .values(claimed_by=claimant, claimed_until=now + timedelta(seconds=2 * timeout_s + CLAIM_MARGIN_S), **also)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


def _claim_and_prepare(lead_id: str, claimant: str) -> _Prepared | None:
    """Claim the lead's delivery job if it is due and nobody holds it, and build its request, in one
    transaction."""
    now = clock.now()
    row = db.session.execute(
        select(Lead, School).join(School, School.id == Lead.school_id).where(Lead.id == lead_id)
    ).first()
    if row is None or row.Lead.delivery_state != "pending" or not row.School.delivery_url:
        db.session.rollback()
        return None
    lead, school = row.Lead, row.School
    if not claim(Lead, lead_id, claimant, now, school.delivery_timeout_s, updated_at=now):
        db.session.rollback()
        return None
    program_name = db.session.scalar(select(Program.name).where(Program.id == lead.program_id))
    fields = map_fields(lead_fields(lead, program_name), school.delivery_field_map or {})
    body, content_type = encode_body(fields, school.delivery_format)
    prepared = _Prepared(
        lead_id=lead.id,
        request_id=lead.request_id,
        campaign_id=lead.campaign_id,
        accepted_at=lead.created_at,
        attempt=lead.attempt_count + 1,
        max_attempts=school.delivery_max_attempts,
        url=school.delivery_url,
        timeout_s=school.delivery_timeout_s,
        body=body,
        headers=signed_headers(school, now, lead.id, body, content_type),
    )
    db.session.commit()
    return prepared


def _record(claimant: str, prepared: _Prepared, answer: Answer, started: datetime, latency_ms: int) -> float | None:
    """Store the attempt and move the lead and its job on; returns the retry delay when another attempt is due."""
    now = clock.now()
    delay: float | None = None
    outcome = answer.outcome
    status: str | None = None  # a retry leaves the lead accepted
    values: dict[str, Any] = {"attempt_count": prepared.attempt, "claimed_by": None, "claimed_until": None}
    if outcome == "delivered":
        status = statuses.DELIVERED
        values.update(delivery_state="done", delivered_at=now)
    elif outcome == "rejected":
        status = statuses.REJECTED
        values.update(delivery_state="done", rejection_reason=answer.error)
    elif prepared.attempt >= prepared.max_attempts:
        outcome, status = "failed", statuses.FAILED
        values.update(delivery_state="given_up", rejection_reason=answer.error)
    else:
        base = float(current_app.config["DELIVERY_RETRY_BASE_S"])
        delay = retry_delay_s(prepared.attempt, base, answer.retry_after_s)
        values["next_attempt_at"] = now + timedelta(seconds=delay)

    db.session.add(
        DeliveryAttempt(
            lead_id=prepared.lead_id,
            number=prepared.attempt,
            at=started,
            http_status=answer.http_status,
            outcome=outcome,
            latency_ms=latency_ms,
            error=answer.error,
        )
    )
    ours = and_(Lead.id == prepared.lead_id, Lead.claimed_by == claimant)
    if status is not None:
        still_ours = bool(statuses.change_status(ours, status, now, **values))
    else:
        moved = db.session.execute(
            update(Lead).where(ours).values(updated_at=now, **values).execution_options(synchronize_session=False)
        )
        still_ours = moved.rowcount == 1  # type: ignore[attr-defined]
    if not still_ours:
        # The lease ran out and another worker holds the job now (it decides the lead's state), or the
        # person opted out during the send and the job was cancelled.
        delay = None
        log.warning("delivery claim lapsed during the send", extra={"lead_id": prepared.lead_id})
    db.session.commit()
    if still_ours and outcome == "rejected":
        lead_not_kept(prepared.lead_id, prepared.campaign_id)
    lag_s = (now - prepared.accepted_at).total_seconds() if still_ours and outcome == "delivered" else None
    shared_metrics.count_delivery_attempt(outcome, status if still_ours else None, lag_s)
    return delay


def deliver_job(lead_id: str) -> str | None:
    """One delivery attempt for the lead's job, if it is due and unclaimed. Returns the attempt's
    outcome, or None when there was nothing to do (already done, not due, or another worker has it).
    Every log line of the attempt carries the id of the request that submitted the lead."""
    claimant = new_claimant()
    prepared = _claim_and_prepare(lead_id, claimant)
    if prepared is None:
        return None
    with bound_request_id(prepared.request_id):
        started = clock.now()
        answer, latency_ms = send_to_school(prepared.url, prepared.body, prepared.headers, prepared.timeout_s,
                                            current_app.config["DELIVERY_URL_ALLOWLIST"])  # fmt: skip
        delay = _record(claimant, prepared, answer, started, latency_ms)
        log.info(
            "lead delivery attempt",
            extra={"lead_id": lead_id, "attempt": prepared.attempt,
                   "outcome": answer.outcome, "http_status": answer.http_status, "latency_ms": latency_ms},
        )  # fmt: skip
        if delay is not None and delay <= MAX_COUNTDOWN_S:
            enqueue_delivery(lead_id, countdown=delay)
    return answer.outcome


def due_jobs_query(before: datetime, now: datetime, limit: int) -> Select[tuple[str, str | None]]:
    """The leads (id and request id) whose delivery is pending, due by ``before`` and unclaimed at
    ``now``, most overdue first."""
    return (
        select(Lead.id, Lead.request_id)
        .where(
            PENDING_DELIVERY,  # the due-job index's own condition
            Lead.next_attempt_at <= before,
            unclaimed(Lead, now),
        )
        .order_by(Lead.next_attempt_at)
        .limit(limit)
    )


def _due_jobs(before: datetime, limit: int) -> list[tuple[str, str | None]]:
    return [(row.id, row.request_id) for row in db.session.execute(due_jobs_query(before, clock.now(), limit))]


def sweep_due_jobs(limit: int = 1000) -> int:
    """Send a task again for every job that is overdue and unclaimed: its message was lost (Redis
    flushed or restarted) or its worker died. Each job is pushed at most once per grace period."""
    now = clock.now()
    jobs = _due_jobs(now - timedelta(seconds=SWEEP_GRACE_S), limit)
    if jobs:
        db.session.execute(
            update(Lead).where(Lead.id.in_([lead_id for lead_id, _ in jobs]), Lead.delivery_state == "pending")
            .values(next_attempt_at=now).execution_options(synchronize_session=False)
        )  # fmt: skip
    db.session.commit()
    for lead_id, request_id in jobs:
        with bound_request_id(request_id):
            log.info("delivery sweeper re-sends a job", extra={"lead_id": lead_id})
            enqueue_delivery(lead_id)
    if jobs:
        shared_metrics.count_resent(len(jobs))
    return len(jobs)


def run_due_jobs(limit: int = 100) -> int:
    """Deliver every due job in this process (operators' CLI and tests); returns the attempts made."""
    jobs = _due_jobs(clock.now(), limit)
    db.session.rollback()
    return sum(1 for lead_id, _ in jobs if deliver_job(lead_id) is not None)
