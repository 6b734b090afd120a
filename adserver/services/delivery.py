"""Delivering accepted leads to schools' CRMs (``http_post``), at least once, never twice at a time.

A worker claims the lead's job (columns of its row) with a conditional UPDATE, so only one worker sends a
lead at a time; the claim is a lease that lapses if the worker dies. It builds the
body (field mapping, JSON or form), signs it the Standard Webhooks way with a
``webhook-id`` that is the same on every attempt, POSTs without following
redirects, classifies the answer and records the attempt. A retry is a
``next_attempt_at`` in the database and, when it is soon, a delayed Celery
message too; the sweeper sends it if that message is lost.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from flask import current_app
from requests.adapters import HTTPAdapter
from sqlalchemy import Select, or_, select, update
from urllib3.exceptions import NewConnectionError

from adserver import clock
from adserver.crypto import decrypt
from adserver.extensions import db, redis_client
from adserver.models import DeliveryAttempt, Lead, Program, School
from adserver.models.leads import PENDING_DELIVERY

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
MAX_REASON_CHARS = 500
USER_AGENT = "adserver-lead-delivery/1"

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


# ---- building the request ---------------------------------------------------


def profile_fields(lead: Lead) -> dict[str, Any]:
    """The visitor's submitted profile, personal fields decrypted."""
    return {
        "first_name": decrypt(lead.first_name_enc),
        "last_name": decrypt(lead.last_name_enc),
        "email": decrypt(lead.email_enc),
        "phone": decrypt(lead.phone_enc),
        "postal_code": decrypt(lead.postal_code_enc),
        "country": lead.country,
        "region": lead.region,
        "education_level": lead.education_level,
        "graduation_year": lead.graduation_year,
        "birth_year": lead.birth_year,
        "military": lead.military,
        "rn_license": lead.rn_license,
    }


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
        "consent_ip": decrypt(lead.consent_ip_enc),
        "consent_user_agent": lead.consent_user_agent,
        "consent_page_url": lead.consent_page_url,
    }


def map_fields(fields: dict[str, Any], field_map: dict[str, str]) -> dict[str, Any]:
    """Rename by the school's map (its name -> ours); fields it does not map keep their names."""
    mapped = {theirs: fields.get(ours) for theirs, ours in field_map.items()}
    renamed = set(field_map.values())
    for name, value in fields.items():
        if name not in renamed and name not in mapped:
            mapped[name] = value
    return mapped


def _form_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def encode_body(fields: dict[str, Any], body_format: str) -> tuple[str, str]:
    """The body and its content type."""
    if body_format == "form":
        return urlencode({k: _form_value(v) for k, v in fields.items()}), "application/x-www-form-urlencoded"
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False), "application/json"


def _secret_bytes(secret: str) -> bytes:
    raw = secret.removeprefix("whsec_")
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The Standard Webhooks ``webhook-signature``: v1, base64 HMAC-SHA256 of "{id}.{timestamp}.{body}"."""
    digest = hmac.new(_secret_bytes(secret), f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


# ---- the SSRF guard ----------------------------------------------------------


class RefusedUrl(Exception):
    """The delivery URL points at a private, loopback or reserved address and is not allow-listed."""


def check_delivery_url(url: str, allowlist: frozenset[str]) -> list[str] | None:
    """Refuse URLs whose host resolves to a non-public address, unless the host is allow-listed.

    Checked at send time, so a name that later resolves to an internal address is caught. Returns the
    addresses to connect to (every answer, checked, in the resolver's order, without repeats), or None
    for an allow-listed host, which is connected to by name.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise RefusedUrl("not an http(s) URL")
    if host in allowlist:
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise RefusedUrl(f"host does not resolve: {exc}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise RefusedUrl("host does not resolve")
    if not all(address.is_global for address in addresses):
        raise RefusedUrl("host resolves to a private, loopback or reserved address")
    return list(dict.fromkeys(str(address) for address in addresses))


class _VettedAddressAdapter(HTTPAdapter):
    """Connects to the address ``check_delivery_url`` vetted instead of resolving the host name again,
    so a name that answers a public address to the check and a private one to the connection (DNS
    rebinding) cannot steer the POST inside. The Host header, TLS SNI and the certificate check keep
    the host name."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: str | tuple[str, str] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        # The name for SNI and the certificate (urllib3 drops it for plain http).
        pool_kwargs["server_hostname"] = host_params["host"]
        host_params["host"] = self.address
        return host_params, pool_kwargs

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        request.headers["Host"] = _host_header(request.url or "")


def _host_header(url: str) -> str:
    """The Host header that connecting by name would send: no trailing dot, the port unless default."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    default_port = 443 if parts.scheme == "https" else 80
    return host if parts.port in (None, default_port) else f"{host}:{parts.port}"


def _new_session(address: str | None = None) -> requests.Session:
    """A session that takes nothing from the environment and, given a vetted address, connects only to it."""
    http = requests.Session()
    http.trust_env = False  # no proxies or .netrc from the environment
    http.headers["User-Agent"] = USER_AGENT
    if address is not None:
        adapter = _VettedAddressAdapter(address)
        http.mount("http://", adapter)
        http.mount("https://", adapter)
    return http


# Allow-listed hosts (tests, benchmarks) are connected to by name, on one shared session.
_http = _new_session()


# ---- classifying the answer --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    outcome: str  # delivered | rejected | retry
    http_status: int | None
    error: str | None
    retry_after_s: float | None = None
    # The connection was refused or the address unreachable, at once: nothing reached the school.
    refused: bool = False


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def classify(status: int, reason: str, retry_after: str | None) -> Answer:
    """2xx delivered; 408, 429 and 5xx retried; any other answer (4xx, a redirect) rejected."""
    if 200 <= status < 300:
        return Answer("delivered", status, None)
    if status in (408, 429) or status >= 500:
        return Answer("retry", status, f"HTTP {status}: {reason}".strip(), _retry_after(retry_after))
    return Answer("rejected", status, f"HTTP {status}: {reason}".strip())


def post_to_school(
    url: str, body: str, headers: dict[str, str], timeout_s: float, addresses: list[str] | None
) -> Answer:
    """POST the lead to the school: to the addresses ``check_delivery_url`` vetted, the next one only when
    the last refused the connection (nothing reached the school, and no time went by: a connect that
    times out is not followed by another, so an attempt stays within its claim), or by name when
    ``addresses`` is None (an allow-listed host)."""
    if addresses is None:
        return _post(_http, url, body, headers, timeout_s)
    for address in addresses:
        with _new_session(address) as http:
            answer = _post(http, url, body, headers, timeout_s)
        if not answer.refused:
            break
    return answer


def _post(http: requests.Session, url: str, body: str, headers: dict[str, str], timeout_s: float) -> Answer:
    try:
        response = http.post(
            url, data=body.encode(), headers=headers, timeout=timeout_s, allow_redirects=False, stream=True
        )
    except requests.Timeout:
        return Answer("retry", None, "timeout")
    except requests.RequestException as exc:
        return Answer("retry", None, f"connection error: {type(exc).__name__}", refused=_refused(exc))
    try:
        snippet = response.raw.read(4 * MAX_REASON_CHARS, decode_content=True)
    except Exception:
        snippet = b""
    finally:
        response.close()
    reason = snippet.decode("utf-8", "replace")[:MAX_REASON_CHARS] or response.reason or ""
    return classify(response.status_code, reason, response.headers.get("Retry-After"))


def _refused(exc: requests.RequestException) -> bool:
    """Whether no connection could be made: refused or unreachable (urllib3's NewConnectionError)."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def retry_delay_s(attempt: int, base_s: float, retry_after_s: float | None) -> float:
    """Exponential backoff from ``base_s`` (the first retry) with up to 25% jitter, never before
    the school's Retry-After."""
    backoff = float(base_s * (2 ** (attempt - 1)) * (1 + random.uniform(0, 0.25)))
    if retry_after_s is not None:
        backoff = max(backoff, retry_after_s)
    return min(backoff, MAX_RETRY_DELAY_S)


# ---- the job -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Prepared:
    lead_id: str
    attempt: int
    max_attempts: int
    url: str
    timeout_s: int
    body: str
    headers: dict[str, str]


def _claimant() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


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
    lease = timedelta(seconds=2 * school.delivery_timeout_s + CLAIM_MARGIN_S)
    claimed = db.session.execute(
        update(Lead)
        .where(
            Lead.id == lead_id,
            Lead.delivery_state == "pending",
            Lead.next_attempt_at <= now + timedelta(seconds=EARLY_ARRIVAL_S),
            or_(Lead.claimed_until.is_(None), Lead.claimed_until < now),
        )
        .values(claimed_by=claimant, claimed_until=now + lease, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        return None
    program_name = db.session.scalar(select(Program.name).where(Program.id == lead.program_id))
    fields = map_fields(lead_fields(lead, program_name), school.delivery_field_map or {})
    body, content_type = encode_body(fields, school.delivery_format)
    timestamp = int(time.time())
    secret = decrypt(school.delivery_secret_encrypted)
    prepared = _Prepared(
        lead_id=lead.id,
        attempt=lead.attempt_count + 1,
        max_attempts=school.delivery_max_attempts,
        url=school.delivery_url,
        timeout_s=school.delivery_timeout_s,
        body=body,
        headers={
            "Content-Type": content_type,
            # The lead id: the same on every attempt, so the school can drop repeats.
            "webhook-id": lead.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, lead.id, timestamp, body),
        },
    )
    db.session.commit()
    return prepared


def _record(claimant: str, prepared: _Prepared, answer: Answer, started: datetime, latency_ms: int) -> float | None:
    """Store the attempt and move the lead and its job on; returns the retry delay when another attempt is due."""
    now = clock.now()
    delay: float | None = None
    outcome = answer.outcome
    values: dict[str, Any] = {"attempt_count": prepared.attempt, "claimed_by": None, "claimed_until": None,
                              "updated_at": now}  # fmt: skip
    if outcome == "delivered":
        values.update(delivery_state="done", status="delivered", delivered_at=now)
    elif outcome == "rejected":
        values.update(delivery_state="done", status="rejected", rejection_reason=answer.error)
    elif prepared.attempt >= prepared.max_attempts:
        outcome = "failed"
        values.update(delivery_state="given_up", status="failed", rejection_reason=answer.error)
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
    still_ours = db.session.execute(
        update(Lead)
        .where(Lead.id == prepared.lead_id, Lead.claimed_by == claimant)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if still_ours.rowcount != 1:  # type: ignore[attr-defined]
        # The lease ran out and another worker holds the job now; it decides the lead's state.
        delay = None
        log.warning("delivery claim lapsed during the send", extra={"lead_id": prepared.lead_id})
    db.session.commit()
    return delay


def deliver_job(lead_id: str) -> str | None:
    """One delivery attempt for the lead's job, if it is due and unclaimed. Returns the attempt's
    outcome, or None when there was nothing to do (already done, not due, or another worker has it)."""
    claimant = _claimant()
    prepared = _claim_and_prepare(lead_id, claimant)
    if prepared is None:
        return None
    started = clock.now()
    tick = time.perf_counter()
    try:
        addresses = check_delivery_url(prepared.url, current_app.config["DELIVERY_URL_ALLOWLIST"])
    except RefusedUrl as exc:
        # Final: retrying cannot make a private address public; the operator must change the URL.
        answer = Answer("rejected", None, f"delivery URL refused: {exc}")
    else:
        answer = post_to_school(prepared.url, prepared.body, prepared.headers, prepared.timeout_s, addresses)
    latency_ms = int((time.perf_counter() - tick) * 1000)
    delay = _record(claimant, prepared, answer, started, latency_ms)
    log.info(
        "lead delivery attempt",
        extra={"lead_id": lead_id, "attempt": prepared.attempt,
               "outcome": answer.outcome, "http_status": answer.http_status, "latency_ms": latency_ms},
    )  # fmt: skip
    if delay is not None and delay <= MAX_COUNTDOWN_S:
        enqueue_delivery(lead_id, countdown=delay)
    return answer.outcome


def due_jobs_query(before: datetime, now: datetime, limit: int) -> Select[tuple[str]]:
    """The leads whose delivery is pending, due by ``before`` and unclaimed at ``now``, most overdue first."""
    return (
        select(Lead.id)
        .where(
            PENDING_DELIVERY,  # the due-job index's own condition
            Lead.next_attempt_at <= before,
            or_(Lead.claimed_until.is_(None), Lead.claimed_until < now),
        )
        .order_by(Lead.next_attempt_at)
        .limit(limit)
    )


def _due_jobs(before: datetime, limit: int) -> list[str]:
    return list(db.session.scalars(due_jobs_query(before, clock.now(), limit)))


def sweep_due_jobs(limit: int = 1000) -> int:
    """Send a task again for every job that is overdue and unclaimed: its message was lost (Redis
    flushed or restarted) or its worker died. Each job is pushed at most once per grace period."""
    now = clock.now()
    lead_ids = _due_jobs(now - timedelta(seconds=SWEEP_GRACE_S), limit)
    if lead_ids:
        db.session.execute(
            update(Lead).where(Lead.id.in_(lead_ids), Lead.delivery_state == "pending")
            .values(next_attempt_at=now).execution_options(synchronize_session=False)
        )  # fmt: skip
    db.session.commit()
    for lead_id in lead_ids:
        enqueue_delivery(lead_id)
    if lead_ids:
        log.info("delivery sweeper re-sent jobs", extra={"count": len(lead_ids)})
    return len(lead_ids)


def run_due_jobs(limit: int = 100) -> int:
    """Deliver every due job in this process (operators' CLI and tests); returns the attempts made."""
    lead_ids = _due_jobs(clock.now(), limit)
    db.session.rollback()
    return sum(1 for lead_id in lead_ids if deliver_job(lead_id) is not None)
