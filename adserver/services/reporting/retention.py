"""Deleting raw impressions and clicks once they are older than ``EVENT_RETENTION_DAYS``.

Reports read the rollups each event was added to when it was stored, so deleting the raw rows
changes no figure. Rows go in small batches, each its own transaction, so the tables are never
locked for long and a stopped run simply resumes next time.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select

from adserver import clock
from adserver.extensions import db
from adserver.models import Click, Impression

log = logging.getLogger(__name__)

BATCH_SIZE = 5000
MAX_BATCHES_PER_RUN = 200


def delete_expired_events(batch_size: int = BATCH_SIZE, max_batches: int = MAX_BATCHES_PER_RUN) -> int:
    """Delete impressions and clicks older than the retention period, oldest first, in batches;
    returns how many rows went."""
    cutoff = clock.now() - timedelta(days=int(current_app.config["EVENT_RETENTION_DAYS"]))
    deleted = 0
    for model in (Impression, Click):
        for _ in range(max_batches):
            expired = select(model.id).where(model.at < cutoff).order_by(model.at).limit(batch_size)
            count = db.session.execute(delete(model).where(model.id.in_(expired.scalar_subquery()))).rowcount  # type: ignore[attr-defined]
            db.session.commit()
            deleted += count
            if count < batch_size:
                break
    if deleted:
        log.info("expired events deleted", extra={"count": deleted, "before": cutoff.isoformat()})
    return deleted
