"""POST /v1/leads: what is accepted, what is refused and why, and what is stored."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from tests.conftest import bearer
from tests.leads.conftest import person, wait_for


def _post(client, world, body, **headers):
    return client.post("/v1/leads", json=body, headers={**world.publisher_headers, **headers})


def _error(response):
    return response.get_json()["error"]


def test_an_accepted_lead_is_201_with_its_id(client, world, admin):
    response = _post(client, world, world.lead())
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "accepted" and body["id"].startswith("lead_")
    lead = client.get(f"/v1/leads/{body['id']}", headers=admin).get_json()
    assert lead["status"] == "accepted"
    assert lead["campaign_id"] == world.campaign["id"]
    assert lead["school_id"] == world.school["id"]


def test_the_phone_is_stored_in_e164_and_the_consent_is_recorded_by_the_server(client, world, admin):
    body = world.lead(phone="(602) 555-0143", email="Ada.Lovelace@Example.COM")
    lead_id = _post(client, world, body, **{"User-Agent": "Mozilla/5.0 test"}).get_json()["id"]
    lead = client.get(f"/v1/leads/{lead_id}", headers=admin).get_json()
    assert lead["phone"] == "+16025550143"
    assert lead["email"] == "Ada.Lovelace@example.com"
    consent = lead["consent"]
    assert consent["granted"] is True
    assert consent["text"] == body["consent"]["text"]
    assert consent["page_url"] == body["consent"]["page_url"]
    assert consent["user_agent"] == "Mozilla/5.0 test"
    assert consent["ip"] == "127.0.0.1"
    assert consent["at"] == lead["created_at"]


def test_personal_data_is_encrypted_at_rest(app, client, world):
    body = world.lead(first_name="Augusta", last_name="King", email="augusta.king@example.com",
                      phone="+1 602 555 0199")  # fmt: skip
    assert _post(client, world, body).status_code == 201
    from adserver.extensions import db

    with app.app_context():
        row = db.session.execute(text("SELECT * FROM leads")).mappings().one()
        stored = " ".join(str(value) for value in row.values())
    for secret in ("Augusta", "King", "augusta.king", "6025550199", "85004", "127.0.0.1"):
        assert secret not in stored


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "ada@"}, "email"),
        ({"phone": "+44 20 7946 0958"}, "phone"),  # London: not North American
        ({"phone": "+1 123 456 7890"}, "phone"),  # area codes never start with 1
        ({"phone": "555"}, "phone"),
        ({"postal_code": "00000"}, "postal_code"),
        ({"postal_code": "hello"}, "postal_code"),
        ({"first_name": "Ada\u0000"}, "first_name"),
        ({"last_name": "Love\nlace"}, "last_name"),
        ({"first_name": ""}, "first_name"),
        ({"education_level": "phd"}, "education_level"),
        ({"graduation_year": 1066}, "graduation_year"),
        ({"military": "yes"}, "military"),
        ({"consent": {"granted": False, "text": "I agree"}}, "consent.granted"),
        ({"consent": {"granted": True}}, "consent.text"),
        ({"consent": {"granted": True, "text": "I agree", "page_url": "javascript:alert(1)"}}, "consent.page_url"),
        ({"program_id": "prg_unknown"}, "program_id"),
        ({"status": "delivered"}, "status"),
        ({"price_cents": 0}, "price_cents"),
        ({"school_id": "sch_other"}, "school_id"),
        ({"favourite_colour": "blue"}, "favourite_colour"),
    ],
)
def test_each_invalid_field_is_named(client, world, overrides, field):
    response = _post(client, world, world.lead(**overrides))
    assert response.status_code == 422, response.get_json()
    error = _error(response)
    assert error["code"] == "validation_error"
    assert field in error["fields"], error


def test_missing_consent_is_refused(client, world):
    body = world.lead()
    del body["consent"]
    response = _post(client, world, body)
    assert response.status_code == 422
    assert "consent" in _error(response)["fields"]


def test_canadian_leads_are_accepted(client, world, admin):
    body = world.lead(postal_code="k1a0b1", phone="+1 613 555 0123")
    response = _post(client, world, body)
    assert response.status_code == 201, response.get_json()
    lead = client.get(f"/v1/leads/{response.get_json()['id']}", headers=admin).get_json()
    assert (lead["postal_code"], lead["country"], lead["region"]) == ("K1A 0B1", "CA", "ON")


def test_a_program_of_the_school_is_accepted(client, world, admin):
    program = world.school["programs"][0]
    response = _post(client, world, world.lead(program_id=program["id"]))
    assert response.status_code == 201
    lead = client.get(f"/v1/leads/{response.get_json()['id']}", headers=admin).get_json()
    assert lead["program_name"] == program["name"]


def test_a_body_that_is_not_json_is_415(client, world):
    response = client.post("/v1/leads", data="email=a@b.c", headers={**world.publisher_headers,
                           "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert response.status_code == 415
    assert _error(response)["code"] == "unsupported_media_type"


def test_malformed_json_is_400(client, world):
    response = client.post("/v1/leads", data="{not json", headers={**world.publisher_headers,
                           "Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == 400


def test_a_body_over_64_kb_is_413(client, world):
    body = world.lead(first_name="A" * (65 * 1024))
    response = _post(client, world, body)
    assert response.status_code == 413
    assert _error(response)["code"] == "payload_too_large"


def test_a_tampered_token_is_refused(client, world):
    body = world.lead()
    body["lead_token"] = body["lead_token"][:-2] + ("AA" if not body["lead_token"].endswith("AA") else "BB")
    response = _post(client, world, body)
    assert response.status_code == 422
    assert "lead_token" in _error(response)["fields"]


def test_a_token_older_than_24_hours_is_410(app, client, world):
    from adserver import clock
    from adserver.models.base import utcnow

    body = world.lead()
    clock.set_now(utcnow() + timedelta(hours=24, minutes=1))
    try:
        response = _post(client, world, body)
    finally:
        clock.set_now(None)
    assert response.status_code == 410
    assert _error(response)["code"] == "token_expired"


def test_a_token_served_to_another_publisher_is_refused(client, world, make_publisher):
    other = make_publisher(name="Other Guides")
    response = client.post("/v1/leads", json=world.lead(), headers=bearer(other["secret_key"]))
    assert response.status_code == 422
    assert "lead_token" in _error(response)["fields"]


def test_only_publishers_submit_leads(client, world, admin):
    assert client.post("/v1/leads", json=world.lead(), headers=world.school_headers).status_code == 403
    assert client.post("/v1/leads", json=world.lead(), headers=admin).status_code == 403
    assert client.post("/v1/leads", json=world.lead()).status_code == 401


def test_a_publishable_key_works_from_the_publishers_site(client, world):
    response = client.post("/v1/leads", json=world.lead(), headers={
        "X-Publisher-Key": world.publisher["publishable_key"], "Origin": "https://careerguides.example"})  # fmt: skip
    assert response.status_code == 201, response.get_json()


def test_a_paused_campaign_still_takes_leads_from_ads_already_shown(client, world, admin):
    client.patch(f"/v1/campaigns/{world.campaign['id']}", json={"status": "paused"}, headers=admin)
    assert _post(client, world, world.lead()).status_code == 201


# ---- eligibility ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "profile", "rule"),
    [
        ({"min_education": "bachelor"}, {"education_level": "associate"}, "min_education"),
        ({"min_age": 21}, {"birth_year": 2010}, "min_age"),
        ({"min_age": 21}, {"birth_year": None}, "min_age"),
        ({"graduation_year_max": 2015}, {"graduation_year": 2020}, "graduation_year_max"),
        ({"graduation_year_max": 2015}, {"graduation_year": None}, "graduation_year_max"),
        ({"requires_rn_license": True}, {"rn_license": False}, "requires_rn_license"),
        ({"military_only": True}, {"military": False}, "military_only"),
    ],
)
def test_a_profile_failing_a_rule_is_not_eligible(client, make_world, rules, profile, rule):
    eligibility = {"min_education": None, "min_age": None, "graduation_year_max": None,
                   "requires_rn_license": False, "military_only": False, **rules}  # fmt: skip
    world = make_world(campaign={"eligibility": eligibility})
    response = _post(client, world, world.lead(**profile))
    assert response.status_code == 422
    error = _error(response)
    assert error["code"] == "not_eligible"
    assert rule in error["fields"] and rule in error["message"]


def test_a_profile_meeting_every_rule_is_accepted(client, make_world):
    eligibility = {"min_education": "bachelor", "min_age": 21, "graduation_year_max": 2015,
                   "requires_rn_license": True, "military_only": True}  # fmt: skip
    world = make_world(campaign={"eligibility": eligibility})
    body = world.lead(education_level="master", birth_year=1980, graduation_year=2015, rn_license=True, military=True)
    assert _post(client, world, body).status_code == 201


# ---- duplicates, caps and budgets --------------------------------------------------


def test_the_same_email_in_another_case_is_a_duplicate(client, world):
    assert _post(client, world, world.lead(email="grace@example.com")).status_code == 201
    response = _post(client, world, world.lead(email="GRACE@Example.com"))
    assert response.status_code == 409
    assert _error(response)["code"] == "duplicate_lead"


def test_the_same_phone_in_another_format_is_a_duplicate(client, world):
    assert _post(client, world, world.lead(phone="+1 (602) 555-0188")).status_code == 201
    response = _post(client, world, world.lead(phone="602.555.0188"))
    assert response.status_code == 409
    assert _error(response)["code"] == "duplicate_lead"


def test_the_same_person_may_ask_another_school(client, make_world):
    first, second = make_world(), make_world()
    body = person(email="grace@example.com", phone="+1 602 555 0177")
    assert _post(client, first, {"lead_token": first.token(), **body}).status_code == 201
    assert _post(client, second, {"lead_token": second.token(), **body}).status_code == 201


def test_a_duplicate_is_accepted_again_after_30_days(app, client, world):
    body = person(email="grace@example.com")
    assert _post(client, world, {"lead_token": world.token(), **body}).status_code == 201
    from adserver.extensions import db
    from adserver.models import Lead
    from adserver.models.base import utcnow

    with app.app_context():
        lead = db.session.scalars(select(Lead)).one()
        lead.created_at = utcnow() - timedelta(days=30, minutes=1)
        db.session.commit()
    assert _post(client, world, {"lead_token": world.token(), **body}).status_code == 201


def test_a_lead_over_the_daily_cap_gets_cap_reached(client, make_world):
    world = make_world(campaign={"caps": {"leads_per_day": 2, "leads_per_month": None}})
    assert [_post(client, world, world.lead()).status_code for _ in range(3)] == [201, 201, 409]
    response = _post(client, world, world.lead())
    assert _error(response)["code"] == "cap_reached"
    assert "caps.leads_per_day" in _error(response)["fields"]


def test_a_lead_over_the_monthly_cap_gets_cap_reached(client, make_world):
    world = make_world(campaign={"caps": {"leads_per_day": None, "leads_per_month": 1}})
    assert _post(client, world, world.lead()).status_code == 201
    response = _post(client, world, world.lead())
    assert response.status_code == 409
    assert "caps.leads_per_month" in _error(response)["fields"]


def test_a_cpl_lead_that_would_overspend_the_daily_budget_is_refused(client, make_world):
    world = make_world(campaign={"budget": {"daily_cents": 10000, "total_cents": None},
                                 "caps": {"leads_per_day": None, "leads_per_month": None}})  # fmt: skip
    # 4500 per lead: two fit in 10000, a third would spend 13500.
    assert [_post(client, world, world.lead()).status_code for _ in range(3)] == [201, 201, 409]
    response = _post(client, world, world.lead())
    assert _error(response)["code"] == "cap_reached"
    assert "budget.daily_cents" in _error(response)["fields"]


def test_a_cpl_lead_that_would_overspend_the_total_budget_is_refused(client, make_world):
    world = make_world(campaign={"budget": {"daily_cents": None, "total_cents": 4500},
                                 "caps": {"leads_per_day": None, "leads_per_month": None}})  # fmt: skip
    assert _post(client, world, world.lead()).status_code == 201
    response = _post(client, world, world.lead())
    assert response.status_code == 409
    assert "budget.total_cents" in _error(response)["fields"]


def test_cpc_leads_spend_nothing_and_only_caps_apply(client, admin, make_world):
    world = make_world(campaign={"pricing": {"model": "cpc", "bid_cents": 150},
                                 "budget": {"daily_cents": 100, "total_cents": 100}})  # fmt: skip
    response = _post(client, world, world.lead())
    assert response.status_code == 201
    assert client.get(f"/v1/leads/{response.get_json()['id']}", headers=admin).status_code == 200


def test_an_accepted_lead_updates_the_serving_counters(app, client, world):
    from adserver import clock
    from adserver.services.serving import counters

    assert _post(client, world, world.lead()).status_code == 201
    with app.app_context():
        # Sent after the answer, with the other leads accepted meanwhile (adserver.batching).
        day = counters.local_day("America/Phoenix", clock.now())
        money = wait_for(lambda: (m := counters.read_money(world.campaign["id"], day)).spend_total and m, 10)
        assert (money.leads_day, money.leads_month, money.spend_day, money.spend_total) == (1, 1, 4500, 4500)


def test_one_call_counts_each_of_several_leads_once(app):
    from adserver import clock
    from adserver.extensions import redis_client
    from adserver.services.serving import counters

    at = clock.now()
    day = counters.local_day("America/Phoenix", at)
    phoenix = "America/Phoenix"
    leads = [
        counters.AcceptedLead("lead_1", "cpn_a", phoenix, 4500, "cpl", at, also_push=("test:outbox", "job_1")),
        counters.AcceptedLead("lead_2", "cpn_b", phoenix, 0, "cpc", at),
        counters.AcceptedLead("lead_3", "cpn_a", phoenix, 4500, "cpl", at, also_push=("test:outbox", "job_3")),
    ]
    with app.app_context():
        counters.record_leads_accepted(leads)
        # The same call again, as the redis client sends it after a lost reply: nothing counts twice.
        counters.record_leads_accepted(leads)
        a, b = counters.read_money("cpn_a", day), counters.read_money("cpn_b", day)
        assert (a.leads_day, a.leads_month, a.spend_day, a.spend_total) == (2, 2, 9000, 9000)
        assert (b.leads_day, b.leads_month, b.spend_day, b.spend_total) == (1, 1, 0, 0)
        client = redis_client.client
        assert client.hget(counters.history_key("cpn_a"), "k") == b"2"
        assert client.lrange("test:outbox", 0, -1) == [b"job_3", b"job_1"]


# ---- idempotency and durability -------------------------------------------------------


def test_a_repeat_with_the_same_idempotency_key_returns_the_first_answer(client, world, admin):
    body = world.lead()
    first = _post(client, world, body, **{"Idempotency-Key": "lead-1"})
    second = _post(client, world, body, **{"Idempotency-Key": "lead-1"})
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"
    feed = client.get("/v1/leads", headers=admin)
    assert feed.status_code == 200


def test_the_lead_and_its_delivery_job_are_written_together(app, client, http_world):
    lead_id = _post(client, http_world, http_world.lead()).get_json()["id"]
    from adserver.extensions import db
    from adserver.models import Lead

    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert (lead.delivery_state, lead.attempt_count, lead.next_attempt_at) == ("pending", 0, lead.created_at)


def test_the_job_is_announced_after_commit_and_the_relay_sends_a_task_carrying_only_its_id(app, client, http_world):
    lead_id = _post(client, http_world, http_world.lead(email="private.person@example.com")).get_json()["id"]
    from adserver.extensions import redis_client
    from adserver.services.leads.delivery import OUTBOX_KEY, relay_announced_jobs

    with app.app_context():
        wait_for(lambda: redis_client.client.llen(OUTBOX_KEY), 10)
        assert redis_client.client.lrange(OUTBOX_KEY, 0, -1) == [lead_id.encode()]
        assert redis_client.client.llen("leads") == 0, "intake itself sends no task"
        assert relay_announced_jobs(wait_s=0.1) == 1
        assert relay_announced_jobs(wait_s=0.1) == 0, "each announcement is relayed once"
        messages = redis_client.client.lrange("leads", 0, -1)
    assert len(messages) == 1, "the relay sent the delivery task to the leads queue"
    for message in messages:
        assert b"private.person" not in message
        args, _kwargs, _options = json.loads(base64.b64decode(json.loads(message)["body"]))
        assert args == [lead_id], "the task carries the lead id and nothing else"


@pytest.mark.parametrize("key_known", [False, True], ids=["key-lookup-fails", "transaction-fails"])
def test_a_database_outage_is_503_with_retry_after_never_201(app, client, world, key_known):
    from adserver import create_app
    from config.settings import load_settings

    if key_known:  # the key is then resolved from the cache, so the lead's own transaction meets the outage
        assert client.get("/v1/ads?postal_code=85004", headers=world.publisher_headers).status_code == 200
    broken = create_app(replace(load_settings(), database_url="postgresql+psycopg://nobody@127.0.0.1:1/none"))
    response = broken.test_client().post("/v1/leads", json=world.lead(), headers=world.publisher_headers)
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert response.get_json()["error"]["code"] == "service_unavailable"


def test_with_redis_down_an_accepted_lead_is_still_stored_with_its_job(app, http_world):
    """The answer does not depend on Redis once the lead is committed; the sweeper sends the job later."""
    from adserver import create_app
    from adserver.extensions import db
    from adserver.models import Lead
    from config.settings import load_settings

    settings = replace(load_settings(), redis_url="redis://127.0.0.1:1/0", embedded_redis=False)
    no_redis = create_app(settings)
    response = no_redis.test_client().post("/v1/leads", json=http_world.lead(), headers=http_world.publisher_headers)
    assert response.status_code == 201, response.get_json()
    with app.app_context():
        lead = db.session.scalars(select(Lead)).one()
        assert lead.delivery_state == "pending"
    app.extensions["celery"].set_default()
