"""Returns: a school sends back a lead it cannot use (not billed), within 30 days of delivery."""

from __future__ import annotations

import logging
from datetime import timedelta

import redis
from sqlalchemy import select

from adserver import clock
from adserver.errors import ApiError
from adserver.extensions import db
from adserver.metrics import counted
from adserver.models import Lead, School
from adserver.services.leads import statuses
from adserver.services.serving import counters

log = logging.getLogger(__name__)

RETURN_WINDOW = timedelta(days=30)


def lead_not_kept(lead_id: str, campaign_id: str) -> None:
    """Take a rejected or returned lead out of its campaign's kept leads, which rank CPL campaigns.
    Only ranking reads them, so a Redis failure is logged, not raised."""
    try:
        counters.record_lead_not_kept(lead_id, campaign_id)
    except redis.RedisError:
        log.warning("kept leads not updated", extra={"lead_id": lead_id}, exc_info=True)


def return_lead(lead: Lead, reason: str) -> Lead:
    """Mark a delivered lead returned (not billed); only within 30 days of its delivery."""
    locked = db.session.execute(select(Lead).where(Lead.id == lead.id).with_for_update()).scalar_one()
    if locked.status == statuses.RETURNED:
        raise ApiError(409, "already_returned", "This lead was already returned.")
    delivered_at = locked.delivered_at
    if locked.status == statuses.ACCEPTED and db.session.get(School, locked.school_id).delivery_method == "pull":  # type: ignore[union-attr]
        # A pull school has its leads in its feed from the moment they are accepted.
        delivered_at = locked.created_at
    if delivered_at is None:
        raise ApiError(409, "not_returnable", f"A lead that is {locked.status} cannot be returned.")
    now = clock.now()
    if now - delivered_at > RETURN_WINDOW:
        raise ApiError(409, "return_window_closed", "Leads can be returned only within 30 days of delivery.")
    statuses.change_status(Lead.id == locked.id, statuses.RETURNED, now, return_reason=reason, returned_at=now)
    db.session.commit()  # also expires ``locked``, which reloads with its new status
    counted.count_lead(statuses.RETURNED)
    lead_not_kept(locked.id, locked.campaign_id)
    return locked
