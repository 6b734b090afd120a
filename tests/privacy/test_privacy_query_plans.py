"""Finding a person's leads and checking the opt-out list read indexes, never every lead: an opt-out
must not scan the leads table, and intake's opt-out check is one primary-key lookup.

SQLite only: its planner has no statistics, so its choice follows from the indexes alone."""

from __future__ import annotations

from typing import Any

import pytest

from adserver.extensions import db


def _plan(statement: Any) -> str:
    sql = str(statement.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}))
    connection = db.engine.raw_connection()
    try:
        rows = connection.cursor().execute("EXPLAIN QUERY PLAN " + sql).fetchall()
    finally:
        connection.close()
    return "\n".join(row[3] for row in rows)


@pytest.fixture
def sqlite_app(app: Any) -> Any:
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("the plan of SQLite's planner")
        yield app


def test_a_persons_leads_are_found_through_the_duplicate_check_indexes(sqlite_app: Any) -> None:
    from adserver.services.privacy.person_requests import Person, leads_matching

    by_email, by_phone = Person("e" * 64, "p" * 64).matches()
    plans = [_plan(leads_matching(match, ["sch_a", "sch_b"])) for match in (by_email, by_phone)]
    assert "ix_leads_school_email_hash (school_id=? AND email_hash=?)" in plans[0]
    assert "ix_leads_school_phone_hash (school_id=? AND phone_hash=?)" in plans[1]


def test_intake_checks_the_opt_out_list_by_its_primary_key(sqlite_app: Any) -> None:
    from adserver.services.leads.intake import _usage_query

    statement = _usage_query(False, False, False, False)._statement
    sql = str(statement.compile(dialect=db.engine.dialect))
    connection = db.engine.raw_connection()
    try:
        rows = connection.cursor().execute("EXPLAIN QUERY PLAN " + sql, [None] * sql.count("?")).fetchall()
    finally:
        connection.close()
    plan = "\n".join(row[3] for row in rows)
    assert "SEARCH opt_outs USING COVERING INDEX sqlite_autoindex_opt_outs_1 (hash=?)" in plan
    assert "SCAN opt_outs" not in plan
