"""Intake's checks find their rows through their indexes: a duplicate check that scanned the
school's recent leads instead made intake several times slower. The sweeper finds due jobs in
the small partial index of pending ones, not by scanning every lead.

SQLite only: its planner has no statistics, so its choice follows from the indexes alone
(PostgreSQL picks by table size, and these tables are small in tests).
"""

from __future__ import annotations

from typing import Any

import pytest

from adserver import clock
from adserver.extensions import db
from adserver.services.leads.delivery import due_jobs_query
from adserver.services.leads.intake import _usage_query


def _plan(sql: str) -> str:
    connection = db.engine.raw_connection()
    try:
        rows = connection.cursor().execute("EXPLAIN QUERY PLAN " + sql, [None] * sql.count("?")).fetchall()
    finally:
        connection.close()
    return "\n".join(row[3] for row in rows)


@pytest.mark.parametrize("limits", [(False, False, False, False), (True, True, True, True)], ids=["none", "all"])
def test_duplicate_cap_and_budget_checks_use_their_indexes(app: Any, limits: tuple[bool, bool, bool, bool]) -> None:
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("the plan of SQLite's planner")
        plan = _plan(str(_usage_query(*limits)._statement.compile(dialect=db.engine.dialect)))
    assert "ix_leads_school_email_hash (school_id=? AND email_hash=? AND created_at>?)" in plan
    assert "ix_leads_school_phone_hash (school_id=? AND phone_hash=? AND created_at>?)" in plan
    assert "SCAN leads" not in plan
    if any(limits):
        assert "ix_leads_campaign_created (campaign_id=? AND created_at>?)" in plan


def test_the_sweeper_reads_the_pending_jobs_index(app: Any) -> None:
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("the plan of SQLite's planner")
        now = clock.now()
        plan = _plan(str(due_jobs_query(now, now, 100).compile(dialect=db.engine.dialect)))
    assert "ix_leads_delivery_due (next_attempt_at<?)" in plan
    assert "SCAN leads" not in plan
