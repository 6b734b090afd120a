"""Reading leads: by id, the school feed (JSON and CSV, cursor pagination) and returns."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from tests.conftest import bearer
from tests.leads.conftest import Scripted, deliver_until_settled, settled, submit


def _feed(client, headers, **params):
    with settled():
        response = client.get("/v1/leads", query_string=params, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


# ---- one lead ------------------------------------------------------------------


def test_the_owning_school_and_the_submitting_publisher_read_a_lead(client, world):
    lead_id = submit(client, world)
    for headers in (world.school_headers, world.publisher_headers):
        response = client.get(f"/v1/leads/{lead_id}", headers=headers)
        assert response.status_code == 200
        assert response.get_json()["id"] == lead_id
        assert response.get_json()["attempts"] == []


def test_school_a_never_sees_school_b_lead(client, make_world, make_publisher):
    school_a, school_b = make_world(), make_world()
    lead_b = submit(client, school_b)
    response = client.get(f"/v1/leads/{lead_b}", headers=school_a.school_headers)
    assert response.status_code == 404
    assert client.get("/v1/leads/lead_doesnotexist", headers=school_a.school_headers).get_json() == response.get_json()
    assert _feed(client, school_a.school_headers).get_json()["data"] == []
    other_publisher = make_publisher(name="Other")
    assert client.get(f"/v1/leads/{lead_b}", headers=bearer(other_publisher["secret_key"])).status_code == 404


# ---- the feed ------------------------------------------------------------------


def test_the_feed_has_every_submitted_field_and_the_consent(client, world):
    lead_id = submit(client, world, first_name="Grace", last_name="Hopper", email="grace@example.com",
                      phone="+1 602 555 0111", education_level="master", military=True)  # fmt: skip
    (lead,) = _feed(client, world.school_headers).get_json()["data"]
    assert lead["id"] == lead_id
    assert (lead["first_name"], lead["last_name"], lead["email"], lead["phone"]) == (
        "Grace", "Hopper", "grace@example.com", "+16025550111")  # fmt: skip
    assert (lead["postal_code"], lead["country"], lead["region"]) == ("85004", "US", "AZ")
    assert lead["education_level"] == "master" and lead["military"] is True
    assert lead["graduation_year"] == 2010 and lead["birth_year"] == 1990
    assert lead["consent"]["granted"] is True and lead["consent"]["text"].startswith("By submitting")
    assert lead["consent"]["page_url"] == "https://careerguides.example/medical-office-manager"


def test_a_lead_appears_in_the_feed_only_after_the_settle_delay(client, world):
    submit(client, world)
    assert client.get("/v1/leads", headers=world.school_headers).get_json()["data"] == []
    assert len(_feed(client, world.school_headers).get_json()["data"]) == 1


def test_admin_sees_every_school_and_may_filter_by_school(client, admin, make_world):
    school_a, school_b = make_world(), make_world()
    lead_a, lead_b = submit(client, school_a), submit(client, school_b)
    assert {lead["id"] for lead in _feed(client, admin).get_json()["data"]} == {lead_a, lead_b}
    filtered = _feed(client, admin, school_id=school_b.school["id"]).get_json()["data"]
    assert [lead["id"] for lead in filtered] == [lead_b]


def test_publishers_cannot_read_the_feed(client, world):
    assert client.get("/v1/leads", headers=world.publisher_headers).status_code == 403


def test_cursor_pages_have_no_gap_and_no_repeat_while_new_leads_arrive(client, world):
    submitted = [submit(client, world) for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = _feed(client, world.school_headers, **params).get_json()
        seen.extend(lead["id"] for lead in page["data"])
        if len(submitted) < 9:
            submitted.append(submit(client, world))  # a new lead arrives between pages
        cursor = page["next_cursor"]
        if not page["data"]:
            break
    assert len(seen) == len(set(seen))
    assert seen == submitted


def test_since_filters_by_creation_time(client, admin, world, app):
    from adserver.extensions import db
    from adserver.models import Lead
    from adserver.models.base import utcnow

    old_id = submit(client, world)
    with app.app_context():
        lead = db.session.get(Lead, old_id)
        lead.created_at = utcnow() - timedelta(days=3)
        db.session.commit()
    new_id = submit(client, world)
    since = (utcnow() - timedelta(days=1)).isoformat()
    assert [lead["id"] for lead in _feed(client, world.school_headers, since=since).get_json()["data"]] == [new_id]
    response = client.get("/v1/leads", query_string={"since": "yesterday"}, headers=world.school_headers)
    assert response.status_code == 422
    assert client.get("/v1/leads?cursor=nonsense", headers=world.school_headers).status_code == 400


def test_format_csv_gives_a_header_row_and_one_row_per_lead(client, world):
    first = submit(client, world, first_name="=HYPERLINK(1)")
    second = submit(client, world)
    response = _feed(client, world.school_headers, format="csv")
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [row["id"] for row in rows] == [first, second]
    assert rows[0]["first_name"] == "'=HYPERLINK(1)"  # never a formula in a spreadsheet
    assert rows[1]["phone"].startswith("+1") and rows[1]["consent_text"].startswith("By submitting")
    assert {"email", "consent_at", "consent_ip", "status"} <= set(rows[0])


def test_accept_text_csv_gives_csv(client, world):
    submit(client, world)
    response = _feed(client, {**world.school_headers, "Accept": "text/csv"})
    assert response.mimetype == "text/csv"
    assert response.get_data(as_text=True).splitlines()[0].startswith("id,status,created_at")


# ---- returns --------------------------------------------------------------------


def test_a_delivered_lead_can_be_returned_within_30_days(app, client, admin, http_world, school_server):
    lead_id = submit(client, http_world)
    assert deliver_until_settled(app, client, admin, lead_id)["status"] == "delivered"
    response = client.post(f"/v1/leads/{lead_id}/return", json={"reason": "invalid_phone"},
                           headers=http_world.school_headers)  # fmt: skip
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "returned" and body["return_reason"] == "invalid_phone" and body["returned_at"]
    again = client.post(f"/v1/leads/{lead_id}/return", json={"reason": "invalid_phone"},
                        headers=http_world.school_headers)  # fmt: skip
    assert again.status_code == 409


def test_a_lead_cannot_be_returned_after_30_days(app, client, admin, http_world, school_server):
    from adserver import clock
    from adserver.models.base import utcnow

    lead_id = submit(client, http_world)
    deliver_until_settled(app, client, admin, lead_id)
    with clock.frozen(utcnow() + timedelta(days=30, minutes=1)):
        response = client.post(f"/v1/leads/{lead_id}/return", json={"reason": "too_late"},
                               headers=http_world.school_headers)  # fmt: skip
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "return_window_closed"


def test_a_lead_not_yet_delivered_or_rejected_cannot_be_returned(app, client, admin, http_world, school_server):
    pending = submit(client, http_world)
    response = client.post(f"/v1/leads/{pending}/return", json={"reason": "x"}, headers=http_world.school_headers)
    assert response.status_code == 409
    school_server.answer(Scripted(422, b"no"))
    deliver_until_settled(app, client, admin, pending)
    response = client.post(f"/v1/leads/{pending}/return", json={"reason": "x"}, headers=http_world.school_headers)
    assert response.status_code == 409


def test_a_pull_school_returns_its_leads_from_acceptance(client, world):
    lead_id = submit(client, world)
    response = client.post(f"/v1/leads/{lead_id}/return", json={"reason": "duplicate"}, headers=world.school_headers)
    assert response.status_code == 200
    assert response.get_json()["status"] == "returned"


def test_another_school_or_a_publisher_cannot_return_a_lead(client, make_world):
    school_a, school_b = make_world(), make_world()
    lead_b = submit(client, school_b)
    body = {"reason": "invalid_phone"}
    assert client.post(f"/v1/leads/{lead_b}/return", json=body, headers=school_a.school_headers).status_code == 404
    assert client.post(f"/v1/leads/{lead_b}/return", json=body, headers=school_b.publisher_headers).status_code == 403
    bad = client.post(f"/v1/leads/{lead_b}/return", json={"reason": ""}, headers=school_b.school_headers)
    assert bad.status_code == 422
