"""A lead's status, and the one function that changes it.

``accepted`` (intake) -> ``delivered`` or ``rejected`` (the school's answer), ``failed`` (attempts
exhausted), ``returned`` (the school sent it back) or ``suppressed`` (its person opted out before it
was delivered). Every change after intake goes through ``change_status``, so whatever must follow a
status change (the reports' counts) is hooked in one place.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, update

from adserver.extensions import db
from adserver.models import Lead

ACCEPTED = "accepted"
DELIVERED = "delivered"
REJECTED = "rejected"
FAILED = "failed"
RETURNED = "returned"
SUPPRESSED = "suppressed"


def change_status(which: ColumnElement[bool], status: str, now: datetime, **values: Any) -> list[str]:
    """Move the leads ``which`` selects to ``status``, setting ``values`` alongside, in the session's
    transaction (the caller commits). Returns the ids of the leads that changed."""
    changed = db.session.execute(
        update(Lead)
        .where(which)
        .values(status=status, updated_at=now, **values)
        .returning(Lead.id)
        .execution_options(synchronize_session=False)
    )
    return list(changed.scalars())
