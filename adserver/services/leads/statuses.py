"""A lead's status, and the one function that changes it.

``accepted`` (intake) -> ``delivered`` or ``rejected`` (the school's answer), ``failed`` (attempts
exhausted), ``returned`` (the school sent it back) or ``suppressed`` (its person opted out before it
was delivered). Every change after intake goes through ``change_status``, which also counts the
outcome in the reports' rollups.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, update

from adserver.extensions import db
from adserver.models import Lead
from adserver.services.reporting.rollups import Tally, add_to_rollups, lead_outcome_figures, rollup_key

ACCEPTED = "accepted"
DELIVERED = "delivered"
REJECTED = "rejected"
FAILED = "failed"
RETURNED = "returned"
SUPPRESSED = "suppressed"


# The outcomes reports count, each in the rollup row of the hour its lead was accepted.
REPORTED = (DELIVERED, REJECTED, FAILED, RETURNED)


def change_status(which: ColumnElement[bool], status: str, now: datetime, **values: Any) -> list[str]:
    """Move the leads ``which`` selects to ``status``, setting ``values`` alongside, and count the
    outcome in the rollups, in the session's transaction (the caller commits): a change that does
    not happen (a lapsed claim) counts nothing. Returns the ids of the leads that changed."""
    changed = db.session.execute(
        update(Lead)
        .where(which)
        .values(status=status, updated_at=now, **values)
        .returning(
            Lead.id, Lead.created_at, Lead.campaign_id, Lead.ad_id, Lead.publisher_id, Lead.school_id, Lead.price_cents
        )
        .execution_options(synchronize_session=False)
    ).all()
    if status in REPORTED:
        tally = Tally()
        for lead in changed:
            tally.add(rollup_key(lead.created_at, lead.campaign_id, lead.ad_id, lead.publisher_id, lead.school_id),
                      **lead_outcome_figures(status, lead.price_cents))  # fmt: skip
        add_to_rollups(tally)
    return [lead.id for lead in changed]
