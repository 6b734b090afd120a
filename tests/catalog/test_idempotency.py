"""Idempotency-Key on mutating POSTs: a repeat returns the first answer and does nothing twice."""

from __future__ import annotations

from tests.conftest import bearer, school_body


def _count_schools(client, admin) -> int:
    return len(client.get("/v1/schools", headers=admin).get_json()["data"])


def test_a_repeat_with_the_same_key_and_body_returns_the_first_answer(client, admin):
    headers = {**admin, "Idempotency-Key": "create-school-1"}
    first = client.post("/v1/schools", json=school_body(), headers=headers)
    second = client.post("/v1/schools", json=school_body(), headers=headers)

    assert first.status_code == second.status_code == 201
    assert second.get_json() == first.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert _count_schools(client, admin) == 1


def test_the_same_key_with_a_different_body_is_refused(client, admin):
    headers = {**admin, "Idempotency-Key": "create-school-2"}
    client.post("/v1/schools", json=school_body(), headers=headers)
    response = client.post("/v1/schools", json=school_body(name="Another"), headers=headers)

    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "idempotency_key_reused"
    assert _count_schools(client, admin) == 1


def test_a_validation_failure_is_replayed_too(client, admin):
    headers = {**admin, "Idempotency-Key": "bad-school"}
    body = school_body(timezone="Nowhere")
    first = client.post("/v1/schools", json=body, headers=headers)
    second = client.post("/v1/schools", json=body, headers=headers)
    assert first.status_code == second.status_code == 422
    assert first.get_json() == second.get_json()


def test_keys_are_scoped_to_the_caller(app, client, admin):
    other_admin = app.test_cli_runner().invoke(args=["create-admin-key"]).output.strip()
    for headers in (admin, bearer(other_admin)):
        response = client.post("/v1/schools", json=school_body(), headers={**headers, "Idempotency-Key": "same"})
        assert response.status_code == 201
        assert "Idempotent-Replayed" not in response.headers
    assert _count_schools(client, admin) == 2


def test_without_a_key_each_post_acts(client, admin):
    client.post("/v1/schools", json=school_body(), headers=admin)
    client.post("/v1/schools", json=school_body(), headers=admin)
    assert _count_schools(client, admin) == 2


def test_an_unusable_key_is_400(client, admin):
    response = client.post("/v1/schools", json=school_body(), headers={**admin, "Idempotency-Key": "x" * 300})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_idempotency_key"


def test_a_stored_answer_holds_no_secret_in_the_clear_and_goes_after_a_day(app, client, admin):
    from datetime import timedelta

    from sqlalchemy import select

    from adserver import clock
    from adserver.api.idempotency import delete_expired_records
    from adserver.extensions import db
    from adserver.models import IdempotencyRecord

    headers = {**admin, "Idempotency-Key": "publisher-1"}
    first = client.post("/v1/publishers", json={"name": "Guides", "domains": ["guides.example"]}, headers=headers)
    secret = first.get_json()["secret_key"]
    with app.app_context():
        (stored,) = db.session.scalars(select(IdempotencyRecord.response_body_enc)).all()
        assert stored and secret not in stored  # sealed: the key shown once is not kept readable
    again = client.post("/v1/publishers", json={"name": "Guides", "domains": ["guides.example"]}, headers=headers)
    assert again.get_json()["secret_key"] == secret  # the replay still answers it

    with app.app_context():
        assert delete_expired_records() == 0
        clock.set_now(clock.now() + timedelta(days=1, minutes=1))
        try:
            assert delete_expired_records() == 1
        finally:
            clock.set_now(None)


def _abandon(app, like_key: str, key: str, seconds_ago: float) -> None:
    """A record of ``key`` for the same request as ``like_key``'s, left in progress ``seconds_ago``: what a
    request whose process died (a killed web worker) before it stored its answer leaves behind."""
    from datetime import timedelta

    from sqlalchemy import select

    from adserver.extensions import db
    from adserver.models import IdempotencyRecord
    from adserver.models.base import utcnow

    with app.app_context():
        first = db.session.scalars(select(IdempotencyRecord).where(IdempotencyRecord.key == like_key)).one()
        left = IdempotencyRecord(principal=first.principal, key=key, request_fingerprint=first.request_fingerprint,
                                 created_at=utcnow() - timedelta(seconds=seconds_ago))  # fmt: skip
        db.session.add(left)
        db.session.commit()
        db.session.remove()


def test_a_repeat_while_the_first_request_may_still_run_is_told_to_wait(app, client, admin):
    client.post("/v1/schools", json=school_body(), headers={**admin, "Idempotency-Key": "first"})
    _abandon(app, "first", "died", seconds_ago=20)

    response = client.post("/v1/schools", json=school_body(), headers={**admin, "Idempotency-Key": "died"})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "idempotency_in_progress"
    assert _count_schools(client, admin) == 1


def test_a_key_whose_request_died_before_answering_is_not_refused_for_ever(app, client, admin):
    from adserver.api.idempotency import IN_PROGRESS_LEASE_S

    client.post("/v1/schools", json=school_body(), headers={**admin, "Idempotency-Key": "first"})
    _abandon(app, "first", "died", seconds_ago=IN_PROGRESS_LEASE_S + 1)

    headers = {**admin, "Idempotency-Key": "died"}
    retried = client.post("/v1/schools", json=school_body(), headers=headers)
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers
    again = client.post("/v1/schools", json=school_body(), headers=headers)
    assert again.get_json() == retried.get_json() and again.headers["Idempotent-Replayed"] == "true"
    assert _count_schools(client, admin) == 2
