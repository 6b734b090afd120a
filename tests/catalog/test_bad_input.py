"""Bad input never produces a 500: malformed JSON, wrong types, huge strings, unknown fields."""

from __future__ import annotations

import pytest

from tests.conftest import AD_BODY, campaign_body, school_body

# Far over any field's limit, yet under the 64 KB body limit, so the fields' own checks answer.
HUGE = "x" * 60_000


@pytest.fixture
def targets(make_school, make_campaign, make_publisher):
    school = make_school()
    campaign = make_campaign(school)
    publisher = make_publisher()
    program_ids = [p["id"] for p in school["programs"]]
    return [
        ("post", "/v1/schools", school_body()),
        ("patch", f"/v1/schools/{school['id']}", {"name": "Renamed"}),
        ("post", "/v1/campaigns", campaign_body(school["id"], program_ids)),
        ("patch", f"/v1/campaigns/{campaign['id']}", {"status": "paused"}),
        ("post", f"/v1/campaigns/{campaign['id']}/ads", dict(AD_BODY)),
        ("patch", f"/v1/campaigns/{campaign['id']}/ads/{campaign['ad']['id']}", {"status": "paused"}),
        ("post", "/v1/publishers", {"name": "P", "domains": ["p.example"]}),
        ("patch", f"/v1/publishers/{publisher['id']}", {"name": "Q"}),
    ]


def _send(client, method, path, headers, **kwargs):
    return getattr(client, method)(path, headers=headers, **kwargs)


def test_malformed_json_is_400(client, admin, targets):
    for method, path, _ in targets:
        for raw in (b"{", b"not json", b"[1, 2]", b'"a string"', b"", b"\xff\xfe"):
            response = _send(client, method, path, admin, data=raw, content_type="application/json")
            assert response.status_code == 400, (method, path, raw, response.get_json())
            assert response.get_json()["error"]["code"] == "malformed_body"


def test_a_body_that_is_not_json_is_415(client, admin, targets):
    for method, path, _ in targets:
        response = _send(client, method, path, admin, data="name=x", content_type="application/x-www-form-urlencoded")
        assert response.status_code == 415, (method, path)


def _mutations(body):
    """The same body with each top-level value replaced by wrong types, huge strings and nesting."""
    for key in body:
        for bad in (None, 123, -1, 1.5, True, [], {}, HUGE, [HUGE], {"nested": HUGE}, "💥" * 1000, "nul\x00byte"):
            yield {**body, key: bad}
    yield {**body, "unknown_field": "x"}
    yield {**body, "id": "sch_forged", "created_at": "2020-01-01T00:00:00Z"}


def test_wrong_types_huge_strings_and_unknown_fields_never_500(client, admin, targets):
    for method, path, body in targets:
        for mutated in _mutations(body):
            response = _send(client, method, path, admin, json=mutated)
            assert response.status_code < 500, (method, path, mutated)
            assert response.status_code in (200, 201, 400, 422), (method, path, response.status_code)
            if response.status_code >= 400:
                error = response.get_json()["error"]
                assert error["code"] and error["message"]


def test_unknown_fields_are_refused_by_name(client, admin, targets):
    for method, path, body in targets:
        response = _send(client, method, path, admin, json={**body, "unknown_field": "x"})
        assert response.status_code == 422, (method, path)
        assert response.get_json()["error"]["fields"] == {"unknown_field": "unknown field"}


def test_a_body_over_the_size_limit_is_413(client, admin):
    response = client.post("/v1/schools", data=b'{"name": "' + b"x" * 2_000_000 + b'"}',
                           content_type="application/json", headers=admin)  # fmt: skip
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    "path",
    ["/v1/schools/" + "x" * 5000, "/v1/campaigns/%00", "/v1/campaigns/' OR 1=1 --", "/v1/campaigns/../schools"],
)
def test_odd_ids_are_404_not_500(client, admin, path):
    assert client.get(path, headers=admin).status_code == 404


def test_control_characters_in_query_parameters_are_422(client, admin):
    response = client.get("/v1/campaigns?school_id=%00", headers=admin)
    assert response.status_code == 422
    assert "school_id" in response.get_json()["error"]["fields"]


def test_wrong_method_is_405_in_the_error_shape(client, admin):
    response = client.delete("/v1/schools", headers=admin)
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"
