"""Who may ask for ads and with what: keys, origins (CORS), postal codes."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import bearer
from tests.serving.conftest import served_ids


@pytest.fixture
def campaign(make_school: Any, make_campaign: Any) -> dict[str, Any]:
    return dict(make_campaign(make_school()))


def test_publishable_key_works_from_the_publishers_domains(
    client: FlaskClient, publisher: dict[str, Any], campaign: dict[str, Any]
) -> None:
    for origin in ("https://careerguides.example", "https://www.careerguides.example"):
        response = client.get(f"/v1/ads?postal_code=85004&key={publisher['publishable_key']}",
                              headers={"Origin": origin})  # fmt: skip
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert served_ids(response.get_json()) == [campaign["id"]]
    headers = {"Origin": "https://careerguides.example", "X-Publisher-Key": publisher["publishable_key"]}
    response = client.get("/v1/ads?postal_code=85004", headers=headers)
    assert response.status_code == 200


def test_publishable_key_is_refused_from_other_origins(
    client: FlaskClient, publisher: dict[str, Any], campaign: dict[str, Any]
) -> None:
    for origin in ("https://evil.example", "https://careerguides.example.evil.example", None):
        headers = {"Origin": origin} if origin else {}
        response = client.get(f"/v1/ads?postal_code=85004&key={publisher['publishable_key']}", headers=headers)
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "origin_not_allowed"
        # The refusal, and only the refusal, is readable by that page: the widget says why it shows nothing.
        assert response.headers.get("Access-Control-Allow-Origin") == origin


def test_a_page_on_the_servers_own_origin_is_known_by_its_fetch_metadata(
    client: FlaskClient, make_publisher: Any, campaign: dict[str, Any]
) -> None:
    # Browsers send no Origin with a same-origin GET; Sec-Fetch-Site says where the request came from.
    own = make_publisher(name="Own pages", domains=["localhost"])
    url = f"/v1/ads?postal_code=85004&key={own['publishable_key']}"
    assert client.get(url, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
    assert client.get(url, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert (
        client.get(url, base_url="http://elsewhere.example", headers={"Sec-Fetch-Site": "same-origin"}).status_code
        == 403
    )


def test_the_interest_list_is_readable_from_any_page(client: FlaskClient) -> None:
    response = client.get("/v1/interests", headers={"Origin": "https://careerguides.example"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    preflight = client.options("/v1/interests", headers={"Origin": "https://careerguides.example",
                                                         "Access-Control-Request-Method": "GET"})  # fmt: skip
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == "*"


def test_a_lead_error_is_readable_by_the_page_that_sent_it(client: FlaskClient, publisher: dict[str, Any]) -> None:
    headers = {"Origin": "https://careerguides.example", "X-Publisher-Key": publisher["publishable_key"]}
    response = client.post("/v1/leads", json={"lead_token": "x"}, headers=headers)
    assert response.status_code == 422
    assert response.headers["Access-Control-Allow-Origin"] == "https://careerguides.example"
    refused = client.post("/v1/leads", json={}, headers={**headers, "Origin": "https://evil.example"})
    assert refused.status_code == 403 and refused.headers["Access-Control-Allow-Origin"] == "https://evil.example"


def test_preflight_is_answered(client: FlaskClient) -> None:
    response = client.options("/v1/ads", headers={"Origin": "https://careerguides.example",
                                                  "Access-Control-Request-Method": "GET"})  # fmt: skip
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://careerguides.example"


def test_keys_and_roles(client: FlaskClient, admin: dict[str, str], make_school: Any, campaign: Any) -> None:
    assert client.get("/v1/ads?postal_code=85004").status_code == 401
    assert client.get("/v1/ads?postal_code=85004", headers=bearer("sk_unknown_0123456789")).status_code == 401
    assert client.get("/v1/ads?postal_code=85004", headers=admin).status_code == 200
    school_key = client.post(f"/v1/schools/{campaign['school_id']}/keys", headers=admin).get_json()["secret_key"]
    assert client.get("/v1/ads?postal_code=85004", headers=bearer(school_key)).status_code == 403


@pytest.mark.parametrize("code", ["ABCDE", "00000", "123", "K0Z 1A1", "", "   ", "85004-12", "W1A 1A1", "8" * 500])
def test_invalid_postal_codes(code: str, ads: Any) -> None:
    body = ads(expect=422, postal_code=code)
    assert body == {"error": {"code": "invalid_postal_code",
                              "message": "Please enter a valid US or Canada ZIP/postal code."}}  # fmt: skip


def test_a_missing_postal_code_is_invalid(client: FlaskClient, publisher: dict[str, Any]) -> None:
    response = client.get("/v1/ads", headers=bearer(publisher["secret_key"]))
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid_postal_code"


@pytest.mark.parametrize(("code", "expected"), [("k1a0b1", "K1A 0B1"), ("K1A 0B1", "K1A 0B1"), ("85004-1234", "85004")])
def test_postal_code_forms(code: str, expected: str, ads: Any) -> None:
    body = ads(postal_code=code)
    assert body["location"]["postal_code"] == expected and body["count"] == 0


def test_blank_optional_parameters_mean_any(ads: Any, campaign: dict[str, Any]) -> None:
    assert served_ids(ads(interest="", degree_level="", modality="")) == [campaign["id"]]


def test_each_ad_carries_what_its_request_info_form_must_ask(
    client: FlaskClient, admin: dict[str, str], ads: Any, make_school: Any, make_campaign: Any
) -> None:
    nursing = make_campaign(make_school(name="Nursing College"), eligibility={
        "min_education": "associate", "min_age": 21, "graduation_year_max": 2020,
        "requires_rn_license": True, "military_only": False})  # fmt: skip
    plain = make_campaign(make_school(name="Open College"), eligibility={})
    served = {ad["campaign_id"]: ad["eligibility"] for ad in ads()["ads"]}
    assert served[nursing["id"]] == {"min_education": "associate", "min_age": 21, "graduation_year_max": 2020,
                                     "requires_rn_license": True, "military_only": False}  # fmt: skip
    assert served[plain["id"]] == {"min_education": None, "min_age": None, "graduation_year_max": None,
                                   "requires_rn_license": False, "military_only": False}  # fmt: skip
    schema = client.get("/openapi.json").get_json()["components"]["schemas"]
    assert schema["ServedAdOut"]["properties"]["eligibility"]["$ref"].endswith("/EligibilityOut")
    assert "eligibility" in schema["ServedAdOut"]["required"]


def test_the_answer_has_the_documented_shape(ads: Any, campaign: dict[str, Any]) -> None:
    from adserver.schemas.serving import AdsResponse, ServedAdOut

    body = ads()
    assert AdsResponse.model_validate(body).count == 1
    assert set(body["ads"][0]) == set(ServedAdOut.model_fields)
    assert set(body["ads"][0]["programs"][0]) == {"id", "name", "interest", "degree_level", "modality"}
