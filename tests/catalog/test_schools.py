"""Schools through the HTTP API: create, read, list, update, keys."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import bearer, school_body


def test_create_school_echoes_it_with_ids_resolved_campuses_and_a_signing_secret(client, admin):
    response = client.post("/v1/schools", json=school_body(), headers=admin)

    assert response.status_code == 201
    school = response.get_json()
    assert school["id"].startswith("sch_")
    assert school["name"] == "Example University"
    campus = school["campuses"][0]
    assert campus["id"] and campus["region"] == "AZ" and campus["country"] == "US"
    assert campus["latitude"] == pytest.approx(33.4, abs=0.2)
    assert campus["longitude"] == pytest.approx(-111.9, abs=0.2)
    assert school["programs"][0]["id"].startswith("prg_")
    assert school["delivery"]["secret"].startswith("whsec_")
    assert school["delivery"]["field_map"] == {"FirstName": "first_name", "Email": "email"}
    assert "Example University" in school["consent_text"]


def test_the_signing_secret_is_shown_only_at_creation(client, admin, make_school):
    school = make_school()
    fetched = client.get(f"/v1/schools/{school['id']}", headers=admin).get_json()
    assert fetched["delivery"]["secret"] is None
    assert fetched["campuses"] == school["campuses"]


def test_a_canadian_campus_resolves_to_its_province(client, admin):
    body = school_body(campuses=[{"name": "Toronto", "postal_code": "m5v3l9", "country": "CA"}])
    school = client.post("/v1/schools", json=body, headers=admin).get_json()
    assert school["campuses"][0]["postal_code"] == "M5V 3L9"
    assert school["campuses"][0]["region"] == "ON"


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"name": ""}, "name"),
        ({"website": "ftp://example.edu"}, "website"),
        ({"campuses": [{"name": "X", "postal_code": "00000", "country": "US"}]}, "campuses.0.postal_code"),
        ({"campuses": [{"name": "X", "postal_code": "85281", "country": "CA"}]}, "campuses.0.country"),
        ({"programs": [{"name": "X", "interest": "basket-weaving", "degree_level": "bachelor",
                        "modality": "online"}]}, "programs.0.interest"),
        ({"programs": [{"name": "X", "interest": "registered-nursing", "degree_level": "phd",
                        "modality": "online"}]}, "programs.0.degree_level"),
        ({"delivery": {"method": "http_post", "url": "ftp://crm.example.edu/leads"}}, "delivery.url"),
        ({"delivery": {"method": "http_post", "url": "javascript:alert(1)"}}, "delivery.url"),
        ({"delivery": {"method": "http_post", "url": "http://10.0.0.5/leads"}}, "delivery.url"),
        ({"delivery": {"method": "http_post", "url": "http://169.254.169.254/latest"}}, "delivery.url"),
        ({"delivery": {"method": "http_post"}}, "delivery"),
        ({"delivery": {"method": "email"}}, "delivery.method"),
        ({"delivery": {"method": "pull", "field_map": {"Email": "ssn"}}}, "delivery.field_map"),
        ({"delivery": {"method": "pull", "max_attempts": 0}}, "delivery.max_attempts"),
        ({"colour": "blue"}, "colour"),
    ],
)  # fmt: skip
def test_invalid_school_fields_are_named(client, admin, override: dict[str, Any], field: str):
    response = client.post("/v1/schools", json=school_body(**override), headers=admin)

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"], error


def test_an_allow_listed_local_delivery_host_is_accepted(client, admin):
    body = school_body(delivery={"method": "http_post", "url": "http://127.0.0.1:9999/leads"})
    assert client.post("/v1/schools", json=body, headers=admin).status_code == 201


def test_list_schools_paginates_with_a_cursor_without_gaps_or_repeats(client, admin, make_school):
    created = [make_school(name=f"School {i}")["id"] for i in range(5)]

    seen: list[str] = []
    cursor = None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(f"/v1/schools{query}", headers=admin).get_json()
        assert len(page["data"]) <= 2
        seen += [school["id"] for school in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == created


def test_list_limits_and_cursors_are_validated(client, admin):
    assert client.get("/v1/schools?limit=0", headers=admin).status_code == 422
    assert client.get("/v1/schools?limit=501", headers=admin).status_code == 422
    assert client.get("/v1/schools?limit=ten", headers=admin).status_code == 422
    response = client.get("/v1/schools?cursor=not-a-cursor", headers=admin)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_cursor"


def test_patch_changes_only_what_is_sent(client, admin, make_school):
    school = make_school()
    response = client.patch(f"/v1/schools/{school['id']}", json={"timezone": "America/Denver"}, headers=admin)

    assert response.status_code == 200
    updated = response.get_json()
    assert updated["timezone"] == "America/Denver"
    assert updated["name"] == school["name"]
    assert updated["campuses"] == school["campuses"]
    assert updated["delivery"]["url"] == school["delivery"]["url"]


def test_patch_merges_delivery_and_updates_or_adds_programs(client, admin, make_school):
    school = make_school()
    program = school["programs"][0]
    patch = {
        "delivery": {"timeout_s": 5},
        "programs": [
            {**{k: program[k] for k in ("id", "interest", "degree_level", "modality")}, "name": "BS Health Admin"},
            {"name": "MBA", "interest": "business-administration", "degree_level": "master", "modality": "online"},
        ],
    }
    updated = client.patch(f"/v1/schools/{school['id']}", json=patch, headers=admin).get_json()

    assert updated["delivery"]["timeout_s"] == 5
    assert updated["delivery"]["method"] == "http_post"
    names = {p["id"]: p["name"] for p in updated["programs"]}
    assert names[program["id"]] == "BS Health Admin"
    assert "MBA" in names.values() and len(names) == 2


def test_patch_validates_the_merged_result(client, admin, make_school):
    school = make_school()
    response = client.patch(f"/v1/schools/{school['id']}", json={"timezone": "Nowhere/Else"}, headers=admin)
    assert response.status_code == 422
    assert "timezone" in response.get_json()["error"]["fields"]
    unknown = client.patch(
        f"/v1/schools/{school['id']}",
        json={"programs": [{"id": "prg_nope", "name": "X", "interest": "registered-nursing",
                            "degree_level": "bachelor", "modality": "online"}]},
        headers=admin,
    )  # fmt: skip
    assert unknown.status_code == 422
    assert "programs.0.id" in unknown.get_json()["error"]["fields"]
    assert client.get(f"/v1/schools/{school['id']}", headers=admin).get_json()["programs"] == school["programs"]


def test_unknown_school_is_404(client, admin):
    response = client.get("/v1/schools/sch_missing", headers=admin)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_a_school_key_is_shown_once_and_works(client, admin, make_school):
    school = make_school()
    response = client.post(f"/v1/schools/{school['id']}/keys", headers=admin)

    assert response.status_code == 201
    key = response.get_json()
    assert key["secret_key"].startswith("sk_") and key["id"].startswith("key_")
    assert client.get(f"/v1/schools/{school['id']}", headers=bearer(key["secret_key"])).status_code == 200


def test_keys_are_stored_only_as_hashes(app, client, admin, make_school):
    from sqlalchemy import select

    from adserver.extensions import db
    from adserver.models import ApiKey

    school = make_school()
    secret = client.post(f"/v1/schools/{school['id']}/keys", headers=admin).get_json()["secret_key"]
    with app.app_context():
        stored = db.session.scalars(select(ApiKey)).all()
    assert stored
    assert all(secret not in (row.key_hash, row.display_prefix) for row in stored)
    assert all(len(row.key_hash) == 64 for row in stored)
