"""A person's opt-out: no new lead of theirs, none of theirs delivered, and one signed notice to each
school that may have one."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from tests.conftest import bearer
from tests.leads.conftest import Scripted, deliver_until_settled, lead_status, wait_for
from tests.privacy.conftest import OPT_OUT, run_notices, settled, submit


def _opt_out(client, admin, **person) -> int:
    response = client.post(OPT_OUT, json=person, headers=admin)
    assert response.status_code == 200, response.get_json()
    return int(response.get_json()["leads_affected"])


def _pushing(make_world, school_server, **delivery):
    return make_world({"method": "http_post", "url": school_server.url, **delivery})


def _deliveries(app) -> int:
    from adserver.extensions import db
    from adserver.services.leads.delivery import run_due_jobs

    with app.app_context():
        made = run_due_jobs()
        db.session.remove()
    return made


def test_an_opt_out_blocks_new_leads_cancels_pending_ones_and_the_school_gets_one_signed_notice(
    app, client, admin, make_world, school_server
):
    receiving, other = _pushing(make_world, school_server), _pushing(make_world, school_server)
    delivered = submit(client, receiving, email="Rosalind.Opt@example.com", phone="+1 602 555 0171")
    assert deliver_until_settled(app, client, admin, delivered)["status"] == "delivered"
    pending = submit(client, other, email="rosalind.opt@example.com")  # the same person, in another case
    assert len(school_server.received) == 1

    assert _opt_out(client, admin, email="ROSALIND.OPT@example.com") == 2

    refused = client.post("/v1/leads", json=receiving.lead(email="rosalind.opt@EXAMPLE.com"),
                          headers=receiving.publisher_headers)  # fmt: skip
    assert refused.status_code == 422
    error = refused.get_json()["error"]
    assert error["code"] == "opted_out" and "Sorry" in error["message"] and set(error["fields"]) == {"email"}
    assert lead_status(client, admin, pending)["status"] == "suppressed"
    assert _deliveries(app) == 0, "no worker may claim a suppressed lead"
    assert client.get(f"/v1/leads/{pending}", headers=other.school_headers).status_code == 404

    assert run_notices(app) == 1
    assert len(school_server.received) == 2, "the pending lead was never sent; only its school was spared a notice"
    notice = school_server.received[-1]
    payload = Webhook(receiving.secret).verify(notice.body, notice.headers)
    assert payload["type"] == "opt_out" and payload["lead_ids"] == [delivered]
    assert payload["school_id"] == receiving.school["id"] and payload["requested_at"]
    assert notice.headers["webhook-id"] == payload["id"]

    assert _opt_out(client, admin, email="rosalind.opt@example.com") == 2, "a repeat finds the same leads"
    assert run_notices(app) == 0 and len(school_server.received) == 2, "and sends no second notice"


def test_an_opt_out_by_phone_matches_the_number_in_any_format(app, client, admin, make_world):
    world = make_world()
    lead_id = submit(client, world, phone="+1 (602) 555-0172")
    assert _opt_out(client, admin, phone="602.555.0172") == 1
    refused = client.post("/v1/leads", json=world.lead(phone="6025550172"), headers=world.publisher_headers)
    assert refused.status_code == 422 and set(refused.get_json()["error"]["fields"]) == {"phone"}
    assert lead_status(client, admin, lead_id)["status"] == "accepted", "a pull school's lead was already in its feed"


def test_a_pull_school_reads_its_notices_its_own_only(app, client, admin, make_world):
    school, stranger = make_world(), make_world()
    first = submit(client, school, email="grace.pull@example.com")
    second = submit(client, school, phone="+1 602 555 0173")
    submit(client, stranger)
    _opt_out(client, admin, email="grace.pull@example.com")
    _opt_out(client, admin, phone="+16025550173")
    assert client.get("/v1/opt-outs", headers=school.school_headers).get_json()["data"] == [], "held back a moment"

    with settled():
        page = client.get("/v1/opt-outs", query_string={"limit": 1}, headers=school.school_headers).get_json()
        rest = client.get("/v1/opt-outs", query_string={"cursor": page["next_cursor"]},
                          headers=school.school_headers).get_json()  # fmt: skip
        theirs = client.get("/v1/opt-outs", headers=stranger.school_headers).get_json()
        everyone = client.get("/v1/opt-outs", headers=admin).get_json()
        future = client.get("/v1/opt-outs", query_string={"since": "2100-01-01T00:00:00Z"}, headers=admin).get_json()
    assert [n["lead_ids"] for n in page["data"] + rest["data"]] == [[first], [second]]
    assert {n["type"] for n in everyone["data"]} == {"opt_out"} and len(everyone["data"]) == 2
    assert theirs["data"] == [] and future["data"] == []
    assert client.get("/v1/opt-outs", headers=school.publisher_headers).status_code == 403
    assert client.get("/v1/opt-outs", query_string={"since": "yesterday"}, headers=admin).status_code == 422


def test_a_lead_in_flight_when_its_person_opts_out_stays_suppressed_and_its_school_is_told(
    app, client, admin, make_world, school_server
):
    """The worker's send cannot be called back, so the school may have the lead: it gets a notice, and
    the worker's answer is recorded as an attempt without undoing the suppression."""
    from adserver.extensions import db
    from adserver.services.leads.delivery import deliver_job

    world = _pushing(make_world, school_server, timeout_s=10)
    lead_id = submit(client, world, email="in.flight@example.com")
    school_server.answer(Scripted(200, delay_s=1.5))  # takes the lead, after the opt-out

    def send() -> None:
        with app.app_context():
            deliver_job(lead_id)
            db.session.remove()

    worker = threading.Thread(target=send)
    worker.start()
    wait_for(lambda: school_server.received, 10, what="the worker's send to start")
    assert _opt_out(client, admin, email="in.flight@example.com") == 1
    worker.join()

    lead = lead_status(client, admin, lead_id)
    assert lead["status"] == "suppressed"
    assert [a["outcome"] for a in lead["attempts"]] == ["delivered"]
    assert _deliveries(app) == 0
    assert run_notices(app) == 1
    notice = school_server.received[-1]
    assert Webhook(world.secret).verify(notice.body, notice.headers)["lead_ids"] == [lead_id]


def test_a_notice_the_school_fails_to_take_is_retried_and_every_attempt_recorded(
    app, client, admin, make_world, school_server
):
    from adserver.extensions import db
    from adserver.models import OptOutNotice, OptOutNoticeAttempt

    world = _pushing(make_world, school_server)
    deliver_until_settled(app, client, admin, submit(client, world, email="retried@example.com"))
    school_server.answer(Scripted(503, b"busy"), Scripted(200))
    _opt_out(client, admin, email="retried@example.com")

    def delivered() -> bool:
        run_notices(app)
        with app.app_context():
            state = db.session.scalar(select(OptOutNotice.delivery_state))
            db.session.remove()
        return state == "delivered"

    wait_for(delivered, 20, what="the notice to be delivered on its second attempt")
    with app.app_context():
        attempts = db.session.execute(
            select(OptOutNoticeAttempt.number, OptOutNoticeAttempt.http_status, OptOutNoticeAttempt.outcome)
            .order_by(OptOutNoticeAttempt.number)
        ).all()  # fmt: skip
    assert [tuple(a) for a in attempts] == [(1, 503, "retry"), (2, 200, "delivered")]
    webhook_ids = {received.headers["webhook-id"] for received in school_server.received[1:]}
    assert len(webhook_ids) == 1, "one webhook-id across the retries"


def test_the_sweeper_resends_a_notice_whose_message_was_lost(app, client, admin, make_world, school_server):
    from adserver import clock
    from adserver.extensions import db
    from adserver.models.base import utcnow
    from adserver.services.privacy.notices import sweep_due_notices

    world = _pushing(make_world, school_server)
    deliver_until_settled(app, client, admin, submit(client, world, email="swept@example.com"))
    _opt_out(client, admin, email="swept@example.com")  # its task message goes to the queue, never read here
    with app.app_context():
        assert sweep_due_notices() == 0, "a new notice is left to its own message for a while"
        with clock.frozen(utcnow() + timedelta(minutes=1)):
            assert sweep_due_notices() == 1
        db.session.remove()


def test_each_request_is_audited_without_naming_the_person(app, client, admin):
    from adserver.extensions import db
    from adserver.models import PrivacyRequest
    from adserver.services.leads.personal_data import email_hash, phone_hash

    _opt_out(client, admin, email="audited@example.com", phone="+1 602 555 0174")
    with app.app_context():
        (audit,) = db.session.scalars(select(PrivacyRequest)).all()
        row = repr({column.name: getattr(audit, column.name) for column in PrivacyRequest.__table__.columns})
        traces = ("audited", "0174", email_hash("audited@example.com"), phone_hash("+16025550174"))
    assert (audit.kind, audit.requested_by, audit.leads_affected) == ("opt_out", "env:ADMIN_API_KEY", 0)
    assert not [trace for trace in traces if trace in row]


@pytest.mark.parametrize(
    ("body", "field"), [({}, "body"), ({"email": "not-an-email"}, "email"), ({"phone": "12"}, "phone")]
)
def test_a_request_that_names_no_valid_person_is_422(client, admin, body, field):
    response = client.post(OPT_OUT, json=body, headers=admin)
    assert response.status_code == 422 and field in response.get_json()["error"]["fields"]


def test_only_admins_may_opt_people_out(client, make_world):
    world = make_world()
    for headers in (world.school_headers, world.publisher_headers):
        assert client.post(OPT_OUT, json={"email": "a@example.com"}, headers=headers).status_code == 403
    assert client.post(OPT_OUT, json={"email": "a@example.com"}, headers=bearer("sk_unknown")).status_code == 401


def test_the_privacy_endpoints_are_in_the_openapi_document_with_their_schemas(client):
    document = client.get("/openapi.json").get_json()
    schemas = document["components"]["schemas"]

    def schema(reference: dict) -> dict:
        return schemas[reference["$ref"].rsplit("/", 1)[1]]

    for path in ("/v1/privacy/opt-out", "/v1/privacy/erase"):
        operation = document["paths"][path]["post"]
        assert set(schema(operation["requestBody"]["content"]["application/json"]["schema"])["properties"]) == {
            "email", "phone"}  # fmt: skip
        answer = schema(operation["responses"]["200"]["content"]["application/json"]["schema"])
        assert set(answer["properties"]) == {"leads_affected"} and operation["x-roles"] == ["admin"]
    listing = document["paths"]["/v1/opt-outs"]["get"]
    assert {"since", "cursor", "limit"} <= {parameter["name"] for parameter in listing["parameters"]}
    lead = schemas["LeadDetailOut"]["properties"]
    assert "erased" in lead and "suppressed" in lead["status"]["enum"]
