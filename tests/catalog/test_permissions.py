"""Roles and tenant scopes on the catalog."""

from __future__ import annotations

import pytest

from tests.conftest import bearer, campaign_body, school_body


@pytest.fixture
def two_schools(client, admin, make_school, make_campaign):
    schools = []
    for name in ("School A", "School B"):
        school = make_school(name=name)
        campaign = make_campaign(school)
        key = client.post(f"/v1/schools/{school['id']}/keys", headers=admin).get_json()["secret_key"]
        schools.append({"school": school, "campaign": campaign, "key": key})
    return schools


def test_requests_without_a_key_get_401(client):
    response = client.get("/v1/schools")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("header", ["Bearer sk_unknown_key_value", "Basic dXNlcjpwYXNz", "Bearer "])
def test_unknown_or_malformed_keys_get_401(client, header):
    assert client.get("/v1/schools", headers={"Authorization": header}).status_code == 401


def test_a_school_key_sees_only_its_own_school(client, two_schools):
    a, b = two_schools
    headers = bearer(a["key"])
    assert client.get(f"/v1/schools/{a['school']['id']}", headers=headers).status_code == 200
    assert client.get(f"/v1/schools/{b['school']['id']}", headers=headers).status_code == 404
    listed = client.get("/v1/schools", headers=headers).get_json()["data"]
    assert [s["id"] for s in listed] == [a["school"]["id"]]


def test_a_school_key_reading_another_schools_campaign_gets_404(client, two_schools):
    a, b = two_schools
    headers = bearer(a["key"])
    assert client.get(f"/v1/campaigns/{a['campaign']['id']}", headers=headers).status_code == 200
    response = client.get(f"/v1/campaigns/{b['campaign']['id']}", headers=headers)
    assert response.status_code == 404
    assert client.get(f"/v1/campaigns/{b['campaign']['id']}/ads", headers=headers).status_code == 404
    listed = client.get(f"/v1/campaigns?school_id={b['school']['id']}", headers=headers).get_json()["data"]
    assert listed == []


def test_a_school_key_creating_a_campaign_gets_403(client, two_schools):
    a, _ = two_schools
    school = a["school"]
    body = campaign_body(school["id"], [school["programs"][0]["id"]])
    response = client.post("/v1/campaigns", json=body, headers=bearer(a["key"]))
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/v1/schools"),
        ("patch", "/v1/schools/{school}"),
        ("post", "/v1/schools/{school}/keys"),
        ("patch", "/v1/campaigns/{campaign}"),
        ("post", "/v1/campaigns/{campaign}/ads"),
        ("post", "/v1/publishers"),
    ],
)
def test_a_school_key_cannot_change_the_catalog(client, two_schools, method, path):
    a, _ = two_schools
    url = path.format(school=a["school"]["id"], campaign=a["campaign"]["id"])
    response = getattr(client, method)(url, json={"name": "x"}, headers=bearer(a["key"]))
    assert response.status_code == 403


def test_publisher_keys_cannot_manage_the_catalog(client, make_publisher):
    publisher = make_publisher()
    secret = bearer(publisher["secret_key"])
    assert client.get("/v1/schools", headers=secret).status_code == 403
    assert client.post("/v1/schools", json=school_body(), headers=secret).status_code == 403
    own = client.get(f"/v1/publishers/{publisher['id']}", headers=secret)
    assert own.status_code == 200 and own.get_json()["domains"] == ["careerguides.example"]
    # A publishable key is for the browser endpoints only.
    publishable = {"X-Publisher-Key": publisher["publishable_key"], "Origin": "https://careerguides.example"}
    assert client.get("/v1/schools", headers=publishable).status_code == 403


def test_a_publisher_sees_only_itself(client, make_publisher):
    first, second = make_publisher("First"), make_publisher("Second")
    headers = bearer(first["secret_key"])
    assert client.get(f"/v1/publishers/{second['id']}", headers=headers).status_code == 404
    assert [p["id"] for p in client.get("/v1/publishers", headers=headers).get_json()["data"]] == [first["id"]]


def test_publisher_creation_returns_both_keys_once(client, admin, make_publisher):
    publisher = make_publisher(domains=["CareerGuides.example", "blog.careerguides.example"])
    assert publisher["publishable_key"].startswith("pk_")
    assert publisher["secret_key"].startswith("sk_")
    assert publisher["domains"] == ["blog.careerguides.example", "careerguides.example"]
    fetched = client.get(f"/v1/publishers/{publisher['id']}", headers=admin).get_json()
    assert "secret_key" not in fetched and "publishable_key" not in fetched


def test_the_environment_admin_key_and_a_created_admin_key_both_work(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-admin-key"])
    assert result.exit_code == 0
    key = result.output.strip()
    assert key.startswith("sk_")
    assert client.get("/v1/schools", headers=bearer(key)).status_code == 200
