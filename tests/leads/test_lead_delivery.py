"""Delivering leads to a school's CRM: a real local HTTP server plays the school."""

from __future__ import annotations

import json
import threading
from urllib.parse import parse_qs

from standardwebhooks import Webhook

from tests.leads.conftest import Scripted, deliver_until_settled, submit


def test_a_2xx_answer_delivers_the_lead_signed_the_standard_webhooks_way(app, client, admin, http_world,
                                                                          school_server):  # fmt: skip
    lead_id = submit(client, http_world, first_name="Grace", email="grace@example.com")
    lead = deliver_until_settled(app, client, admin, lead_id)

    assert lead["status"] == "delivered" and lead["delivered_at"]
    assert [(a["number"], a["http_status"], a["outcome"]) for a in lead["attempts"]] == [(1, 200, "delivered")]
    assert lead["attempts"][0]["latency_ms"] >= 0
    (received,) = school_server.received
    payload = Webhook(http_world.secret).verify(received.body, received.headers)
    assert received.headers["webhook-id"] == lead_id
    assert received.headers["content-type"] == "application/json"
    assert payload["id"] == lead_id
    assert payload["phone"].startswith("+1")
    assert payload["consent_text"] == lead["consent"]["text"]
    # The school's field map renames ours (FirstName <- first_name); unmapped fields keep their names.
    assert payload["FirstName"] == "Grace" and payload["Email"] == "grace@example.com"
    assert "first_name" not in payload and payload["last_name"] == "Lovelace"


def test_field_map_and_form_bodies(app, client, admin, make_world, school_server):
    field_map = {"fname": "first_name", "zip": "postal_code", "optin": "consent_text"}
    world = make_world({"method": "http_post", "url": school_server.url, "format": "form", "field_map": field_map})
    lead_id = submit(client, world, first_name="Mary", military=True)
    assert deliver_until_settled(app, client, admin, lead_id)["status"] == "delivered"
    (received,) = school_server.received
    Webhook(world.secret).verify(received.body, received.headers, json_parse=False)
    assert received.headers["content-type"] == "application/x-www-form-urlencoded"
    form = {key: values[0] for key, values in parse_qs(received.body.decode(), keep_blank_values=True).items()}
    assert form["fname"] == "Mary" and form["zip"] == "85004" and form["military"] == "true"
    assert "first_name" not in form and "postal_code" not in form


def test_500_twice_then_200_is_delivered_on_attempt_3_with_one_webhook_id(app, client, admin, http_world,
                                                                          school_server):  # fmt: skip
    school_server.answer(Scripted(500, b"down"), Scripted(503, b"still down"))
    lead_id = submit(client, http_world)
    lead = deliver_until_settled(app, client, admin, lead_id)

    assert lead["status"] == "delivered"
    assert [(a["number"], a["http_status"], a["outcome"]) for a in lead["attempts"]] == [
        (1, 500, "retry"), (2, 503, "retry"), (3, 200, "delivered")]  # fmt: skip
    assert len(school_server.received) == 3
    assert {r.headers["webhook-id"] for r in school_server.received} == {lead_id}
    for received in school_server.received:
        Webhook(http_world.secret).verify(received.body, received.headers)


def test_a_4xx_is_rejected_with_its_reason_and_not_retried(app, client, admin, http_world, school_server):
    school_server.answer(Scripted(400, b'{"error":"invalid state code"}'))
    lead_id = submit(client, http_world)
    lead = deliver_until_settled(app, client, admin, lead_id)

    assert lead["status"] == "rejected"
    assert "invalid state code" in lead["rejection_reason"] and "400" in lead["rejection_reason"]
    assert [(a["http_status"], a["outcome"]) for a in lead["attempts"]] == [(400, "rejected")]
    assert len(school_server.received) == 1


def test_a_409_is_rejected_but_408_and_429_are_retried(app, client, admin, http_world, school_server):
    school_server.answer(Scripted(408), Scripted(429, headers={"Retry-After": "0"}), Scripted(409, b"duplicate"))
    lead_id = submit(client, http_world)
    lead = deliver_until_settled(app, client, admin, lead_id)
    assert [(a["http_status"], a["outcome"]) for a in lead["attempts"]] == [
        (408, "retry"), (429, "retry"), (409, "rejected")]  # fmt: skip
    assert lead["status"] == "rejected"


def test_attempts_stop_at_max_attempts_and_the_lead_fails(app, client, admin, http_world, school_server):
    school_server.default = Scripted(502, b"bad gateway")
    lead_id = submit(client, http_world)
    lead = deliver_until_settled(app, client, admin, lead_id)
    assert lead["status"] == "failed"
    assert [a["outcome"] for a in lead["attempts"]] == ["retry", "retry", "failed"]
    assert len(school_server.received) == 3


def test_a_hanging_endpoint_times_out_and_is_retried(app, client, admin, make_world, school_server):
    world = make_world({"method": "http_post", "url": school_server.url, "timeout_s": 1, "max_attempts": 2})
    school_server.answer(Scripted(hang=True))
    lead_id = submit(client, world)
    lead = deliver_until_settled(app, client, admin, lead_id)
    assert lead["status"] == "delivered"
    first, second = lead["attempts"]
    assert (first["http_status"], first["outcome"], first["error"]) == (None, "retry", "timeout")
    assert second["outcome"] == "delivered"


def test_a_connection_error_is_retried(app, client, admin, make_world):
    from bench.common import free_port

    world = make_world({"method": "http_post", "url": f"http://127.0.0.1:{free_port()}/x", "max_attempts": 2})
    lead = deliver_until_settled(app, client, admin, submit(client, world))
    assert lead["status"] == "failed"
    assert [a["outcome"] for a in lead["attempts"]] == ["retry", "failed"]
    assert all(a["error"].startswith("connection error") for a in lead["attempts"])


def test_retry_after_is_honoured(app, client, admin, http_world, school_server):
    from adserver.extensions import db
    from adserver.models import Lead
    from adserver.services.leads.delivery import deliver_job

    school_server.answer(Scripted(429, headers={"Retry-After": "120"}))
    lead_id = submit(client, http_world)
    with app.app_context():
        assert deliver_job(lead_id) == "retry"
        lead = db.session.get(Lead, lead_id)
        attempt_at = client.get(f"/v1/leads/{lead_id}", headers=admin).get_json()["attempts"][0]["at"]
        from datetime import datetime

        waited = (lead.next_attempt_at - datetime.fromisoformat(attempt_at)).total_seconds()
        assert waited >= 119
        # Not due yet: running due jobs does nothing.
        assert deliver_job(lead_id) is None
    assert len(school_server.received) == 1


def test_redirects_are_not_followed(app, client, admin, http_world, school_server):
    school_server.answer(Scripted(302, b"", headers={"Location": "http://169.254.169.254/latest/meta-data"}))
    lead = deliver_until_settled(app, client, admin, submit(client, http_world))
    assert lead["status"] == "rejected"
    assert "302" in lead["rejection_reason"]
    assert len(school_server.received) == 1


def test_a_url_resolving_to_a_private_address_is_refused_at_send_time(app, client, admin, http_world, school_server):
    lead_id = submit(client, http_world)
    allowlist = app.config["DELIVERY_URL_ALLOWLIST"]
    app.config["DELIVERY_URL_ALLOWLIST"] = frozenset()
    try:
        lead = deliver_until_settled(app, client, admin, lead_id)
    finally:
        app.config["DELIVERY_URL_ALLOWLIST"] = allowlist
    assert lead["status"] == "rejected"
    assert "refused" in lead["rejection_reason"]
    assert school_server.received == []


def test_two_workers_never_send_the_same_lead_at_once(app, client, admin, http_world, school_server):
    from adserver.extensions import db
    from adserver.services.leads.delivery import deliver_job

    school_server.default = Scripted(200, delay_s=0.3)
    lead_id = submit(client, http_world)
    outcomes: list[str | None] = []
    start = threading.Barrier(4)

    def worker() -> None:
        with app.app_context():
            start.wait()
            outcomes.append(deliver_job(lead_id))
            db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes, key=str) == [None, None, None, "delivered"]
    assert len(school_server.received) == 1


def test_the_sweeper_resends_jobs_whose_message_was_lost(app, client, http_world):
    from datetime import timedelta

    from adserver.extensions import db, redis_client
    from adserver.models import Lead
    from adserver.models.base import utcnow
    from adserver.services.leads.delivery import OUTBOX_KEY, sweep_due_jobs

    lead_id = submit(client, http_world)
    with app.app_context():
        redis_client.client.delete("leads", OUTBOX_KEY)  # the announcement and any message are lost
        assert sweep_due_jobs() == 0  # not overdue yet: its own message may still come
        lead = db.session.get(Lead, lead_id)
        lead.next_attempt_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
        assert sweep_due_jobs() == 1
        message = json.loads(redis_client.client.lrange("leads", 0, -1)[0])
        assert message["headers"]["task"] == "adserver.leads.deliver"
        assert sweep_due_jobs() == 0  # pushed once per grace period, not on every sweep


def test_a_stuck_claim_is_swept_once_its_lease_lapses(app, client, http_world):
    from datetime import timedelta

    from adserver.extensions import db
    from adserver.models import Lead
    from adserver.models.base import utcnow
    from adserver.services.leads.delivery import sweep_due_jobs

    lead_id = submit(client, http_world)
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        lead.next_attempt_at = utcnow() - timedelta(minutes=5)
        lead.claimed_by = "a-worker-that-died"
        lead.claimed_until = utcnow() + timedelta(minutes=1)
        db.session.commit()
        assert sweep_due_jobs() == 0
        lead.claimed_until = utcnow() - timedelta(seconds=1)
        db.session.commit()
        assert sweep_due_jobs() == 1


def test_a_pull_school_gets_no_delivery_job(app, client, world):
    from adserver.extensions import db
    from adserver.models import Lead

    lead_id = submit(client, world)
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert (lead.delivery_state, lead.next_attempt_at) == (None, None)


def test_backoff_starts_at_the_base_delay_grows_exponentially_and_respects_retry_after():
    from adserver.services.leads.delivery import MAX_RETRY_DELAY_S, retry_delay_s

    for _ in range(50):
        first, second, third = (retry_delay_s(n, 30.0, None) for n in (1, 2, 3))
        assert 30.0 <= first <= 37.5 and 60.0 <= second <= 75.0 and 120.0 <= third <= 150.0
    assert retry_delay_s(1, 30.0, 600.0) == 600.0
    assert retry_delay_s(30, 30.0, None) == MAX_RETRY_DELAY_S
