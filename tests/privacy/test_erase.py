"""Erasing a person: nothing of their email, phone, name, address or browser is left in the database,
in Redis or in the logs, while their leads still read, list and export."""

from __future__ import annotations

import csv
import io
import logging

from sqlalchemy import select

from tests.leads.conftest import Scripted, deliver_until_settled, lead_status
from tests.privacy.conftest import ERASE, dump_database, dump_redis, run_notices, settled, submit

EMAIL = "Zelphine.Quarrington@example.org"
PHONE = "+1 602 555 0187"
# Every form the person's data could be stored or echoed in.
TRACES = ("zelphine", "quarrington", "+16025550187", "602 555 0187", "6025550187", "555-0187",
          "zephyr-lane-8841", "ZelphineBrowser/7.3")  # fmt: skip
PERSON = {"email": EMAIL, "phone": PHONE, "first_name": "Zelphine", "last_name": "Quarrington",
          "consent": {"granted": True, "text": "By submitting, I agree that Example University may contact me.",
                      "page_url": "https://careerguides.example/zephyr-lane-8841"}}  # fmt: skip
BROWSER = {"User-Agent": "Mozilla/5.0 ZelphineBrowser/7.3"}


def _found(text: str) -> list[str]:
    return [trace for trace in TRACES if trace in text.lower() or trace in text]


def _log_text(records: list[logging.LogRecord]) -> str:
    from adserver.logs import JsonFormatter

    formatter = JsonFormatter()
    return "\n".join(formatter.format(record) for record in records)


def test_erase_leaves_no_trace_of_the_person_in_the_database_redis_or_logs(
    app, client, admin, make_world, school_server, caplog
):
    from adserver.services.leads.personal_data import email_hash, phone_hash

    caplog.set_level(logging.DEBUG)
    pushing = make_world({"method": "http_post", "url": school_server.url})
    pull, waiting = make_world(), make_world({"method": "http_post", "url": school_server.url})
    # The school refuses the lead, echoing the email in its answer, which the lead keeps as its reason.
    school_server.answer(Scripted(400, f'{{"error": "{EMAIL} is already a student"}}'.encode()))
    rejected = submit(client, pushing, headers={**pushing.publisher_headers, **BROWSER}, **PERSON)
    assert deliver_until_settled(app, client, admin, rejected)["status"] == "rejected"
    pulled = submit(client, pull, **PERSON)
    pending = submit(client, waiting, **PERSON)  # not delivered yet
    # Stored in the clear: the school's answer, the page and the browser (the rest is sealed).
    assert set(_found(dump_database(app))) >= {"zelphine", "quarrington", "zephyr-lane-8841", "ZelphineBrowser/7.3"}

    response = client.post(ERASE, json={"email": EMAIL.upper(), "phone": "(602) 555-0187"}, headers=admin)
    assert response.status_code == 200 and response.get_json() == {"leads_affected": 3}

    for lead_id, status in ((rejected, "rejected"), (pulled, "accepted"), (pending, "suppressed")):
        lead = lead_status(client, admin, lead_id)
        assert lead["erased"] is True and lead["status"] == status
        assert not {"first_name", "email", "phone", "postal_code", "birth_year", "military"} & set(lead)
        assert set(lead["consent"]) == {"granted", "text", "at"}
        assert lead["rejection_reason"] is None and all(a["error"] is None for a in lead["attempts"])
    with settled():
        feed = client.get("/v1/leads", headers=pull.school_headers).get_json()["data"]
        exported = client.get("/v1/leads", query_string={"format": "csv"}, headers=pull.school_headers)
    assert [(lead["id"], lead["erased"], "email" in lead) for lead in feed] == [(pulled, True, False)]
    (row,) = csv.DictReader(io.StringIO(exported.get_data(as_text=True)))
    assert row["id"] == pulled and row["erased"] == "true" and row["email"] == "" and row["consent_text"]
    assert run_notices(app) == 1, "the school that refused the lead still had it, and is told"

    with app.app_context():
        hashes = (email_hash(EMAIL), phone_hash("+16025550187"))
    database = dump_database(app)
    assert _found(database) == []
    assert [database.count(value) for value in hashes] == [1, 1], "only the opt-out list keeps the keyed hashes"
    redis_text = dump_redis(app)
    assert pending in redis_text, "the dump reads Redis' values (the delivery job's announcement)"
    assert _found(redis_text) == []
    logged = _log_text(caplog.records)
    assert "privacy request" in logged, "the logs were captured"
    assert _found(logged) == []

    again = client.post(ERASE, json={"email": EMAIL}, headers=admin)
    assert again.status_code == 200 and again.get_json() == {"leads_affected": 0}
    refused = client.post("/v1/leads", json=pull.lead(**PERSON), headers=pull.publisher_headers)
    assert refused.get_json()["error"]["code"] == "opted_out"


def test_an_erased_lead_keeps_what_reports_and_the_consent_proof_need(app, client, admin, make_world):
    from adserver.extensions import db
    from adserver.models import Lead, PrivacyRequest

    world = make_world()
    lead_id = submit(client, world, **PERSON)
    before = lead_status(client, admin, lead_id)
    assert client.post(ERASE, json={"phone": PHONE}, headers=admin).get_json() == {"leads_affected": 1}
    after = lead_status(client, admin, lead_id)
    kept = ("id", "status", "campaign_id", "school_id", "publisher_id", "ad_id", "impression_id", "program_id",
            "created_at")  # fmt: skip
    assert {name: after[name] for name in kept} == {name: before[name] for name in kept}
    assert after["consent"] == {name: before["consent"][name] for name in ("granted", "text", "at")}
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert (lead.price_cents, lead.pricing_model) == (4500, "cpl") and lead.erased_at is not None
        audits = db.session.execute(select(PrivacyRequest.kind, PrivacyRequest.leads_affected)).all()
    assert [tuple(audit) for audit in audits] == [("erase", 1)]
