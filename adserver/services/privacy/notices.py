"""Opt-out notices: telling each school which of an opted-out person's leads it may have.

Every school reads its notices at ``GET /v1/opt-outs``. An ``http_post`` school is also sent each
one the way its leads are (``services.leads.delivery``): a JSON body signed the Standard Webhooks
way with the notice id as ``webhook-id``, through the SSRF guard, claimed in the notice's row so
only one worker sends it at a time, every attempt recorded, retried with backoff up to the
school's ``max_attempts``, and found again by a sweeper if its message or its worker is lost.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from adserver import clock
from adserver.auth import Principal
from adserver.extensions import db
from adserver.models import OptOutNotice, OptOutNoticeAttempt, School
from adserver.models.privacy import PENDING_NOTICE
from adserver.pagination import paginate_by_time
from adserver.schemas.privacy import OptOutNoticeOut, OptOutsQuery
from adserver.services.leads.delivery import (
    MAX_COUNTDOWN_S,
    SWEEP_GRACE_S,
    claim,
    new_claimant,
    retry_delay_s,
    unclaimed,
)
from adserver.services.leads.feed import FEED_SETTLE_S
from adserver.services.leads.school_endpoint import Answer, send_to_school
from adserver.services.leads.webhooks import signed_headers

log = logging.getLogger(__name__)

DELIVER_NOTICE_TASK = "adserver.privacy.deliver_notice"


def notice_payload(notice: OptOutNotice) -> dict[str, Any]:
    """What a school is told, in the webhook body and in its list: the notice, the leads, the time."""
    return {
        "id": notice.id,
        "type": "opt_out",
        "school_id": notice.school_id,
        "lead_ids": list(notice.lead_ids),
        "requested_at": notice.requested_at.isoformat(),
    }


def enqueue_notice(notice_id: str, countdown: float | None = None) -> None:
    """Send the notice's delivery task (its id only). A failure is logged, not raised: the sweeper sends it."""
    try:
        current_app.extensions["celery"].send_task(DELIVER_NOTICE_TASK, args=[notice_id], countdown=countdown,
                                                   retry=False)  # fmt: skip
    except Exception:
        log.warning("notice task not sent; the sweeper will send it", extra={"notice_id": notice_id}, exc_info=True)


@dataclass(frozen=True, slots=True)
class _Send:
    notice_id: str
    attempt: int
    max_attempts: int
    url: str
    timeout_s: int
    body: str
    headers: dict[str, str]


def _claim_and_prepare(notice_id: str, claimant: str) -> _Send | None:
    """Claim the notice if it is due and nobody holds it, and build its signed request, in one transaction."""
    now = clock.now()
    row = db.session.execute(
        select(OptOutNotice, School).join(School, School.id == OptOutNotice.school_id)
        .where(OptOutNotice.id == notice_id)
    ).first()  # fmt: skip
    if row is None or row.OptOutNotice.delivery_state != "pending" or not row.School.delivery_url:
        db.session.rollback()
        return None
    notice, school = row.OptOutNotice, row.School
    if not claim(OptOutNotice, notice_id, claimant, now, school.delivery_timeout_s):
        db.session.rollback()
        return None
    body = json.dumps(notice_payload(notice), separators=(",", ":"))
    send = _Send(
        notice_id=notice.id,
        attempt=notice.attempt_count + 1,
        max_attempts=school.delivery_max_attempts,
        url=school.delivery_url,
        timeout_s=school.delivery_timeout_s,
        body=body,
        headers=signed_headers(school, now, notice.id, body, "application/json"),
    )
    db.session.commit()
    return send


def _record(claimant: str, send: _Send, answer: Answer, started: datetime, latency_ms: int) -> float | None:
    """Store the attempt and move the notice on; returns the retry delay when another attempt is due."""
    now = clock.now()
    delay: float | None = None
    outcome = answer.outcome
    values: dict[str, Any] = {"attempt_count": send.attempt, "claimed_by": None, "claimed_until": None}
    if outcome == "delivered":
        values.update(delivery_state="delivered", delivered_at=now)
    elif outcome == "rejected":
        values["delivery_state"] = "rejected"
    elif send.attempt >= send.max_attempts:
        outcome = values["delivery_state"] = "failed"
    else:
        delay = retry_delay_s(send.attempt, float(current_app.config["DELIVERY_RETRY_BASE_S"]), answer.retry_after_s)
        values["next_attempt_at"] = now + timedelta(seconds=delay)
    db.session.add(
        OptOutNoticeAttempt(notice_id=send.notice_id, number=send.attempt, at=started, http_status=answer.http_status,
                            outcome=outcome, latency_ms=latency_ms, error=answer.error)
    )  # fmt: skip
    moved = db.session.execute(
        update(OptOutNotice)
        .where(OptOutNotice.id == send.notice_id, OptOutNotice.claimed_by == claimant)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        delay = None  # the lease ran out and another worker holds the notice now
        log.warning("notice claim lapsed during the send", extra={"notice_id": send.notice_id})
    db.session.commit()
    return delay


def deliver_notice(notice_id: str) -> str | None:
    """One delivery attempt of the notice, if it is due and unclaimed; the attempt's outcome, or None
    when there was nothing to do."""
    claimant = new_claimant()
    send = _claim_and_prepare(notice_id, claimant)
    if send is None:
        return None
    started = clock.now()
    answer, latency_ms = send_to_school(send.url, send.body, send.headers, send.timeout_s,
                                        current_app.config["DELIVERY_URL_ALLOWLIST"])  # fmt: skip
    delay = _record(claimant, send, answer, started, latency_ms)
    log.info(
        "opt-out notice attempt",
        extra={"notice_id": notice_id, "attempt": send.attempt, "outcome": answer.outcome,
               "http_status": answer.http_status},
    )  # fmt: skip
    if delay is not None and delay <= MAX_COUNTDOWN_S:
        enqueue_notice(notice_id, countdown=delay)
    return answer.outcome


def _due_notices(before: datetime, limit: int) -> list[str]:
    now = clock.now()
    return list(
        db.session.scalars(
            select(OptOutNotice.id)
            .where(PENDING_NOTICE, OptOutNotice.next_attempt_at <= before, unclaimed(OptOutNotice, now))
            .order_by(OptOutNotice.next_attempt_at)
            .limit(limit)
        )
    )  # fmt: skip


def sweep_due_notices(limit: int = 1000) -> int:
    """Send a task again for every notice that is overdue and unclaimed (its message was lost or its
    worker died), at most once per grace period."""
    now = clock.now()
    notice_ids = _due_notices(now - timedelta(seconds=SWEEP_GRACE_S), limit)
    if notice_ids:
        db.session.execute(
            update(OptOutNotice).where(OptOutNotice.id.in_(notice_ids), PENDING_NOTICE)
            .values(next_attempt_at=now).execution_options(synchronize_session=False)
        )  # fmt: skip
    db.session.commit()
    for notice_id in notice_ids:
        enqueue_notice(notice_id)
    if notice_ids:
        log.info("notice sweeper re-sent notices", extra={"count": len(notice_ids)})
    return len(notice_ids)


def run_due_notices(limit: int = 100) -> int:
    """Deliver every due notice in this process (operators' CLI and tests); returns the attempts made."""
    notice_ids = _due_notices(clock.now(), limit)
    db.session.rollback()
    return sum(1 for notice_id in notice_ids if deliver_notice(notice_id) is not None)


def notices_page(principal: Principal, query: OptOutsQuery) -> tuple[list[OptOutNoticeOut], str | None]:
    """One page of the caller's notices, oldest first: a school key reads its own, an admin key all
    (or one school's). Like the lead feed, notices younger than a moment are held back so that a
    kept cursor never skips one still being written."""
    stmt = select(OptOutNotice).where(OptOutNotice.requested_at <= clock.now() - timedelta(seconds=FEED_SETTLE_S))
    if principal.role == "school":
        stmt = stmt.where(OptOutNotice.school_id == principal.school_id)
    if query.school_id:
        stmt = stmt.where(OptOutNotice.school_id == query.school_id)
    if query.since is not None:
        stmt = stmt.where(OptOutNotice.requested_at >= query.since)
    notices, next_cursor = paginate_by_time(stmt, OptOutNotice.requested_at, OptOutNotice.id, query.limit,
                                            query.cursor)  # fmt: skip
    return [OptOutNoticeOut.model_validate(notice_payload(notice)) for notice in notices], next_cursor
