"""Idempotency-Key: a repeated POST with the same key and body gets the first answer.

The key is recorded before the request runs and its answer after. A repeat while the first request
may still be running gets 409 ``idempotency_in_progress``; once no request can still be running
(``IN_PROGRESS_LEASE_S``), the record belongs to one whose process died before it stored its answer
(a killed web worker, a database gone before the answer was stored), and the repeat runs the
request again instead of being refused for ever.

The first answer is kept for ``IDEMPOTENCY_KEEP`` (a day), sealed like personal data: an answer can
hold a secret shown once (a new key, a school's signing secret). A beat task deletes older records.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from flask import Response, request
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from adserver import clock
from adserver.auth import Principal
from adserver.crypto import decrypt, encrypt, keyed_hash
from adserver.errors import ApiError
from adserver.extensions import db
from adserver.models import IdempotencyRecord
from adserver.models.base import utcnow

# Longer than any request may run: gunicorn kills a worker whose request takes more than its 30 s timeout.
IN_PROGRESS_LEASE_S = 60

IDEMPOTENCY_KEEP = timedelta(days=1)

# 1 to 255 printable ASCII characters; a header's surrounding spaces are not part of its value.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?$"
IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


def _fingerprint() -> str:
    # Keyed: a bare hash of a small body (a privacy request's email) could be reversed by guessing.
    return keyed_hash(b"\0".join((request.method.encode(), request.full_path.encode(), request.get_data(cache=True))))


def replay_or_run(principal: Principal | None, run: Callable[[], Response]) -> Response:
    """Run the request once per (key owner, Idempotency-Key); replay the stored answer after that."""
    key = request.headers.get("Idempotency-Key") or ""
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 printable ASCII "
                       "characters, not starting or ending with a space.")  # fmt: skip
    owner = principal.key_id if principal else f"ip:{request.remote_addr}"
    fingerprint = _fingerprint()

    record_id = _record(owner, key, fingerprint)
    if record_id is None:
        return _replay(owner, key, fingerprint)

    try:
        response = run()
    except ApiError as exc:
        response = exc.to_response()
    except BaseException:
        db.session.rollback()
        _forget(record_id)
        raise
    db.session.rollback()  # the handler committed its own work; drop anything it left half done
    if response.status_code >= 500:
        _forget(record_id)
        return response
    stored = db.session.get(IdempotencyRecord, record_id)
    if stored is not None:
        stored.status_code = response.status_code
        stored.response_body_enc = encrypt(response.get_data(as_text=True))
        stored.completed = True
        db.session.commit()
    return response


def _record(owner: str, key: str, fingerprint: str) -> int | None:
    """Record the key as this request's, or take over a record whose request died before it stored
    its answer; None when the key belongs to another request (answered, or perhaps still running)."""
    record = IdempotencyRecord(principal=owner, key=key, request_fingerprint=fingerprint)
    db.session.add(record)
    try:
        db.session.commit()
        return record.id
    except IntegrityError:
        db.session.rollback()
    now = utcnow()
    abandoned: int | None = db.session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.principal == owner, IdempotencyRecord.key == key,
               IdempotencyRecord.request_fingerprint == fingerprint, IdempotencyRecord.completed.is_(False),
               IdempotencyRecord.created_at < now - timedelta(seconds=IN_PROGRESS_LEASE_S))
        .values(created_at=now)
        .returning(IdempotencyRecord.id)
    ).scalar_one_or_none()  # fmt: skip
    db.session.commit()
    return abandoned


def _replay(owner: str, key: str, fingerprint: str) -> Response:
    existing = db.session.execute(
        select(IdempotencyRecord).where(IdempotencyRecord.principal == owner, IdempotencyRecord.key == key)
    ).scalar_one()
    if existing.request_fingerprint != fingerprint:
        raise ApiError(422, "idempotency_key_reused", "This Idempotency-Key was already used with a different request.")
    if not existing.completed or existing.status_code is None:
        raise ApiError(
            409,
            "idempotency_in_progress",
            "A request with this Idempotency-Key is still being processed.",
            headers={"Retry-After": "1"},
        )
    body = decrypt(existing.response_body_enc) if existing.response_body_enc is not None else ""
    response = Response(body, status=existing.status_code, mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _forget(record_id: int) -> None:
    stored = db.session.get(IdempotencyRecord, record_id)
    if stored is not None:
        db.session.delete(stored)
        db.session.commit()


def delete_expired_records(batch_size: int = 1000, max_batches: int = 100) -> int:
    """Delete the records older than ``IDEMPOTENCY_KEEP``, in batches; returns how many went."""
    cutoff = clock.now() - IDEMPOTENCY_KEEP
    deleted = 0
    for _ in range(max_batches):
        expired = select(IdempotencyRecord.id).where(IdempotencyRecord.created_at < cutoff).limit(batch_size)
        gone = db.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(expired.scalar_subquery())))
        count = int(gone.rowcount)  # type: ignore[attr-defined]
        db.session.commit()
        deleted += count
        if count < batch_size:
            break
    return deleted
