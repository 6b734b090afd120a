"""GET /openapi.json says what the code enforces, and the code refuses what the document refuses."""

from __future__ import annotations

import re

import pytest

CONTROL_AND_SPACES = ["Ada", "  Ada  ", "A d a", "\u00a0Ada\u3000", "Ada\n", "", "   ", "\x85", "A\x00da", "A\tda",
                      "\x1cAda", "Ada\x7f", "é"]  # fmt: skip


@pytest.fixture
def document(client):
    return client.get("/openapi.json").get_json()


def _operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def test_a_document_that_openapi_31_validators_accept(document):
    # The OpenAPI 3.1 meta-schema and validator that Schemathesis (requirements-dev.txt) loads documents with.
    from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

    assert OPENAPI_31_VALIDATOR.is_valid(document)


def test_every_operation_with_a_query_or_body_lists_422_and_every_post_the_idempotency_answers(document):
    for method, path, operation in _operations(document):
        takes_input = "requestBody" in operation or any(p["in"] == "query" for p in operation["parameters"])
        if takes_input:
            assert "422" in operation["responses"], (method, path)
        if method == "post":
            assert {"400", "409", "422"} <= operation["responses"].keys(), (method, path)


def test_the_lead_feed_documents_its_csv_answer(document):
    assert "text/csv" in document["paths"]["/v1/leads"]["get"]["responses"]["200"]["content"]


def test_a_key_the_documented_idempotency_pattern_refuses_is_400(client, admin, document):
    schema = document["paths"]["/v1/publishers"]["post"]["parameters"][-1]["schema"]
    pattern = re.compile(schema["pattern"])
    for key in ("ok-key", "a b", "x" * 255, "x" * 256, "caf\u00e9", "tab\tkey"):
        response = client.post("/v1/publishers", json={"name": "P"}, headers={**admin, "Idempotency-Key": key})
        assert (response.status_code == 201) == bool(pattern.search(key)), (key, response.get_json())


def test_the_documented_text_pattern_is_what_a_name_accepts(client, admin, document):
    pattern = re.compile(document["components"]["schemas"]["PublisherIn"]["properties"]["name"]["pattern"])
    for name in CONTROL_AND_SPACES:
        response = client.post("/v1/publishers", json={"name": name}, headers=admin)
        assert (response.status_code == 201) == bool(pattern.search(name)), (name, response.get_json())


def test_a_number_is_not_a_time(client, admin):
    response = client.get("/v1/leads?since=0.5", headers=admin)
    assert response.status_code == 422
    assert "since" in response.get_json()["error"]["fields"]


def test_a_body_of_the_wrong_json_type_is_refused_not_converted(client, admin, make_school, make_campaign):
    campaign = make_campaign(make_school())
    for patch in ({"eligibility": {"military_only": 0}}, {"pricing": {"model": "cpl", "bid_cents": "4500"}}):
        response = client.patch(f"/v1/campaigns/{campaign['id']}", json=patch, headers=admin)
        assert response.status_code == 422, (patch, response.get_json())


def test_a_total_budget_past_what_the_database_holds_is_422_not_500(client, admin, make_school, make_campaign):
    campaign = make_campaign(make_school())
    response = client.patch(f"/v1/campaigns/{campaign['id']}", json={"budget": {"total_cents": 99_999_999_999}},
                            headers=admin)  # fmt: skip
    assert response.status_code == 422
    assert "budget.total_cents" in response.get_json()["error"]["fields"]
    response = client.patch(f"/v1/campaigns/{campaign['id']}", json={"budget": {"total_cents": 2_147_483_647}},
                            headers=admin)  # fmt: skip
    assert response.status_code == 200


def test_a_name_padded_past_its_length_is_what_the_document_says(client, admin, document):
    """The code trims, then counts; the document's pattern counts the same way (no maxLength)."""
    name = document["components"]["schemas"]["PublisherIn"]["properties"]["name"]
    assert "maxLength" not in name
    pattern = re.compile(name["pattern"])
    for sent in (" " * 5 + "x" * 200 + " " * 5, "x" * 201, "x" * 200):
        response = client.post("/v1/publishers", json={"name": sent}, headers=admin)
        assert (response.status_code == 201) == bool(pattern.search(sent)), (len(sent), response.get_json())


def test_an_id_or_a_url_is_checked_as_sent(client, admin, document):
    """An id's pattern has no room for spaces, and a URL's length counts the spaces the code trims."""
    response = client.get("/v1/campaigns", query_string={"school_id": " sch_1"}, headers=admin)
    assert response.status_code == 422 and "school_id" in response.get_json()["error"]["fields"]
    url = "https://example.edu/" + "a" * 2028
    assert len(url) == document["components"]["schemas"]["AdIn"]["properties"]["landing_url"]["maxLength"]
    response = client.post("/v1/schools", json={"name": "S", "website": f"  {url}"}, headers=admin)
    assert response.status_code == 422 and "website" in response.get_json()["error"]["fields"]


def test_what_an_erased_lead_leaves_out_is_not_required_by_the_document(document):
    from adserver.schemas.leads import PERSONAL_CONSENT_FIELDS, PERSONAL_FIELDS

    schemas = document["components"]["schemas"]
    assert not set(PERSONAL_FIELDS) & set(schemas["LeadOut"].get("required", []))
    assert not set(PERSONAL_CONSENT_FIELDS) & set(schemas["ConsentOut"].get("required", []))
