"""Sealing every encrypted value again under the current ``ENCRYPTION_KEY``.

Run after ``ENCRYPTION_KEY`` is set to a new key and the keys it replaces are listed in
``ENCRYPTION_KEYS_OLD`` (values under those still decrypt meanwhile, so the service keeps running).
Rows are read in primary-key order, in batches of one transaction each. A value already under the
current key is left alone, so a run stopped part-way (a crash, a deploy) is finished by running it
again. A row is written back only if none of its sealed values changed since it was read: a lead
erased meanwhile stays erased.

The keyed hashes (duplicate checks, the opt-out list) are keyed from ``HASH_KEY``, not from the
encryption key, so they are not touched and stay valid.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from cryptography.exceptions import InvalidTag
from cryptography.fernet import InvalidToken
from sqlalchemy import Column, Table, select, update

from adserver.crypto import decrypt, encrypt, under_current_key
from adserver.extensions import db
from adserver.models import IdempotencyRecord, Lead, School

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SealedColumns:
    """A table and its encrypted columns."""

    table: Table
    columns: tuple[str, ...]


# Every encrypted column there is: a new one must be listed here (a test checks the models).
SEALED = (
    SealedColumns(cast(Table, Lead.__table__), ("first_name_enc", "last_name_enc", "email_enc", "phone_enc",
                                                 "postal_code_enc", "consent_ip_enc")),
    SealedColumns(cast(Table, School.__table__), ("delivery_secret_encrypted", "delivery_secret_previous_encrypted")),
    SealedColumns(cast(Table, IdempotencyRecord.__table__), ("response_body_enc",)),
)  # fmt: skip


@dataclass
class BatchResult:
    """One batch of one table: how far it read, how many rows it read and sealed again, and the ids of
    rows that changed while it ran (left for the next run) or hold a value no key opens."""

    table: str
    last_id: str | None
    rows: int = 0
    resealed: int = 0
    changed: int = 0
    unreadable: tuple[str, ...] = ()


def _resealed(row: Any, columns: tuple[str, ...]) -> dict[str, str]:
    """The row's values that are not under the current key, sealed again under it (empty and NULL
    values, such as an erased lead's, are left as they are)."""
    fresh = {}
    for name in columns:
        value = getattr(row, name)
        if value and not under_current_key(value):
            fresh[name] = encrypt(decrypt(value))
    return fresh


def reseal_batch(sealed: SealedColumns, after_id: str | None, size: int) -> BatchResult:
    """Seal again, under the current key, the values of up to ``size`` rows after ``after_id``; one transaction."""
    table, key = sealed.table, cast(Column[str], sealed.table.c.id)
    query = select(key, *(table.c[name] for name in sealed.columns)).order_by(key).limit(size)
    if after_id is not None:
        query = query.where(key > after_id)
    rows = db.session.execute(query).all()
    result = BatchResult(table.name, rows[-1].id if rows else None, rows=len(rows))
    unreadable = []
    for row in rows:
        try:
            fresh = _resealed(row, sealed.columns)
        except (InvalidTag, InvalidToken):
            unreadable.append(row.id)
            continue
        if not fresh:
            continue
        unchanged = [table.c[name].is_not_distinct_from(getattr(row, name)) for name in sealed.columns]
        written = db.session.execute(update(table).where(key == row.id, *unchanged).values(**fresh))
        if written.rowcount == 1:  # type: ignore[attr-defined]
            result.resealed += 1
        else:
            result.changed += 1
    db.session.commit()
    result.unreadable = tuple(unreadable)
    if unreadable:
        log.error("values no encryption key opens", extra={"table": table.name, "ids": unreadable})
    return result


def reseal_everything(batch_size: int = 500) -> Iterator[BatchResult]:
    """Seal every encrypted value again under the current key, table by table, batch by batch,
    yielding each batch's result as it commits."""
    for sealed in SEALED:
        after_id: str | None = None
        while True:
            result = reseal_batch(sealed, after_id, batch_size)
            if result.rows == 0:
                break
            yield result
            after_id = result.last_id
