"""What campaigns have used, from the database: cents spent and leads accepted since a time.

These are the figures that budgets and lead caps are checked against, and the one place each is
defined: ``spent_since`` (the CPC bid of every counted click, and the price of every accepted
lead) and ``leads_since`` (accepted leads, whatever became of them later, so a cap or a budget
is never passed). The live counters in Redis are rebuilt from them after Redis lost its data
(``rebuild``); lead intake checks its limits with the same expressions (``lead_count``,
``lead_spend``) inside its transaction.

``since=None`` means ever: that is the campaign's total spend. Raw clicks are meant to be deleted
after 90 days, so the total is where hourly rollups will stand in for old raw rows.

``money_fence`` orders a rebuild's reads against the events worker's batches of clicks: a batch
read from the stream before Redis lost its data is either committed before the rebuild reads, or
dropped (``reporting.events``), so no click is billed that the rebuilt counters do not hold.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text

from adserver.extensions import db
from adserver.models import Click, Lead

# An arbitrary, fixed key of the PostgreSQL advisory lock behind ``money_fence``.
_FENCE_KEY = 7_301_144_202
# Campaign ids per query: the IN list stays short.
_CHUNK = 500


def lead_count(campaign: Any, since: Any) -> Any:
    """Accepted leads of ``campaign`` (a column or a parameter) since ``since`` (or ever, if None)."""
    where = [Lead.campaign_id == campaign] + ([Lead.created_at >= since] if since is not None else [])
    return select(func.count(Lead.id)).where(*where)


def lead_spend(campaign: Any, since: Any) -> Any:
    """Cents charged for the accepted leads of ``campaign`` since ``since`` (or ever, if None)."""
    where = [Lead.campaign_id == campaign] + ([Lead.created_at >= since] if since is not None else [])
    return select(func.coalesce(func.sum(Lead.price_cents), 0)).where(*where)


def _grouped(statement: Any, campaign_ids: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = dict.fromkeys(campaign_ids, 0)
    for start in range(0, len(campaign_ids), _CHUNK):
        chunk = list(campaign_ids[start : start + _CHUNK])
        for campaign_id, value in db.session.execute(statement(chunk)):
            found[campaign_id] += int(value or 0)
    return found


def spent_since(campaign_ids: Sequence[str], since: datetime | None) -> dict[str, int]:
    """Cents each campaign has spent since ``since`` (ever, if None): counted clicks at their CPC
    bid, and accepted leads at their price."""

    def clicks(chunk: list[str]) -> Any:
        where: list[Any] = [Click.campaign_id.in_(chunk), Click.counted.is_(True)]
        where += [Click.at >= since] if since is not None else []
        return select(Click.campaign_id, func.sum(Click.spend_cents)).where(*where).group_by(Click.campaign_id)

    def leads(chunk: list[str]) -> Any:
        where = [Lead.campaign_id.in_(chunk)] + ([Lead.created_at >= since] if since is not None else [])
        return select(Lead.campaign_id, func.sum(Lead.price_cents)).where(*where).group_by(Lead.campaign_id)

    by_clicks = _grouped(clicks, campaign_ids)
    by_leads = _grouped(leads, campaign_ids)
    return {campaign_id: by_clicks[campaign_id] + by_leads[campaign_id] for campaign_id in campaign_ids}


def leads_since(campaign_ids: Sequence[str], since: datetime) -> dict[str, int]:
    """Leads each campaign has accepted since ``since``."""

    def leads(chunk: list[str]) -> Any:
        where = [Lead.campaign_id.in_(chunk), Lead.created_at >= since]
        return select(Lead.campaign_id, func.count(Lead.id)).where(*where).group_by(Lead.campaign_id)

    return _grouped(leads, campaign_ids)


@contextmanager
def money_fence(*, exclusive: bool) -> Iterator[None]:
    """Hold the fence for the rest of the session's transaction (``db.session``): shared by the events worker while
    it stores a batch of clicks, exclusive while a rebuild reads what was spent. The caller commits
    or rolls back. On SQLite every transaction already holds the one writer lock (BEGIN IMMEDIATE)."""
    if db.engine.dialect.name == "postgresql":
        lock = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        db.session.execute(text(f"SELECT {lock}(:key)"), {"key": _FENCE_KEY})
    else:
        db.session.execute(text("SELECT 1"))  # begins the transaction, and with it the writer lock
    yield
