"""Campaigns and ads through the HTTP API."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import AD_BODY, campaign_body


def test_create_campaign_echoes_every_section(client, admin, make_school):
    school = make_school()
    body = campaign_body(school["id"], [school["programs"][0]["id"]])

    response = client.post("/v1/campaigns", json=body, headers=admin)

    assert response.status_code == 201
    campaign = response.get_json()
    assert campaign["id"].startswith("cpn_")
    for section in ("pricing", "budget", "caps", "eligibility", "publishers", "frequency_cap"):
        assert campaign[section] == body[section], section
    assert campaign["flight"]["hours"] == [0, 24]
    assert campaign["targeting"]["interests"] == ["healthcare-administration"]
    assert campaign["program_ids"] == [school["programs"][0]["id"]]


def test_campaign_defaults_fill_omitted_sections(client, admin, make_school):
    school = make_school()
    body = {"school_id": school["id"], "name": "Minimal", "pricing": {"model": "cpc", "bid_cents": 250}}
    campaign = client.post("/v1/campaigns", json=body, headers=admin).get_json()

    assert campaign["status"] == "draft"
    assert campaign["flight"]["days"] == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert campaign["targeting"]["interests"] == []
    assert campaign["budget"] == {"daily_cents": None, "total_cents": None}


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"pricing": {"model": "cpl", "bid_cents": -5}}, "pricing.bid_cents"),
        ({"pricing": {"model": "cpm", "bid_cents": 100}}, "pricing.model"),
        ({"pricing": {"model": "cpl", "bid_cents": 12.5}}, "pricing.bid_cents"),
        ({"budget": {"daily_cents": 0}}, "budget.daily_cents"),
        ({"caps": {"leads_per_day": -1}}, "caps.leads_per_day"),
        ({"flight": {"start": "2026-12-01", "end": "2026-11-01"}}, "flight"),
        ({"flight": {"start": "2026-13-01"}}, "flight.start"),
        ({"flight": {"days": ["mon", "funday"]}}, "flight.days.1"),
        ({"flight": {"days": []}}, "flight.days"),
        ({"flight": {"hours": [20, 8]}}, "flight"),
        ({"flight": {"hours": [0, 25]}}, "flight"),
        ({"targeting": {"interests": ["underwater-basket-weaving"]}}, "targeting.interests.0"),
        ({"targeting": {"regions": ["ZZ"]}}, "targeting.regions.0"),
        ({"targeting": {"countries": ["MX"]}}, "targeting.countries.0"),
        ({"targeting": {"postal_codes": ["ABCDE"]}}, "targeting.postal_codes.0"),
        ({"targeting": {"radius_miles": -10}}, "targeting.radius_miles"),
        ({"eligibility": {"min_education": "kindergarten"}}, "eligibility.min_education"),
        ({"status": "running"}, "status"),
        ({"publishers": {"allow": ["pub_unknown"]}}, "publishers.allow.0"),
        ({"school_id": "sch_unknown"}, "school_id"),
        ({"program_ids": ["prg_unknown"]}, "program_ids.0"),
        ({"budget": {"daily_cents": 100, "weekly_cents": 5}}, "budget.weekly_cents"),
    ],
)
def test_invalid_campaign_fields_are_named(client, admin, make_school, override: dict[str, Any], field: str):
    school = make_school()
    body = campaign_body(school["id"], [school["programs"][0]["id"]])
    for key, value in override.items():
        body[key] = {**body[key], **value} if isinstance(value, dict) and isinstance(body.get(key), dict) else value

    response = client.post("/v1/campaigns", json=body, headers=admin)

    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["fields"], response.get_json()


def test_a_program_of_another_school_cannot_be_attached(client, admin, make_school):
    ours, theirs = make_school(), make_school(name="Other College")
    body = campaign_body(ours["id"], [theirs["programs"][0]["id"]])
    response = client.post("/v1/campaigns", json=body, headers=admin)
    assert response.status_code == 422
    assert "program_ids.0" in response.get_json()["error"]["fields"]


def test_postal_code_targets_are_normalised(client, admin, make_school):
    school = make_school()
    body = campaign_body(school["id"], [], targeting={"postal_codes": ["85004-1234", "k1a0b1"]})
    campaign = client.post("/v1/campaigns", json=body, headers=admin).get_json()
    assert campaign["targeting"]["postal_codes"] == ["85004", "K1A 0B1"]


def test_patch_pauses_a_campaign_and_keeps_the_rest(client, admin, make_school, make_campaign):
    campaign = make_campaign(make_school(), with_ad=False)
    response = client.patch(f"/v1/campaigns/{campaign['id']}", json={"status": "paused"}, headers=admin)

    assert response.status_code == 200
    updated = response.get_json()
    assert updated["status"] == "paused"
    assert updated["pricing"] == campaign["pricing"]
    assert updated["targeting"] == campaign["targeting"]


def test_patch_merges_nested_objects(client, admin, make_school, make_campaign):
    campaign = make_campaign(make_school(), with_ad=False)
    updated = client.patch(
        f"/v1/campaigns/{campaign['id']}", json={"budget": {"daily_cents": 5000}}, headers=admin
    ).get_json()
    assert updated["budget"] == {"daily_cents": 5000, "total_cents": None}


def test_patch_rejects_invalid_changes_and_keeps_the_campaign(client, admin, make_school, make_campaign):
    campaign = make_campaign(make_school(), with_ad=False)
    bad = client.patch(f"/v1/campaigns/{campaign['id']}", json={"flight": {"end": "2020-01-01"}}, headers=admin)
    assert bad.status_code == 422
    moved = client.patch(f"/v1/campaigns/{campaign['id']}", json={"school_id": "sch_other"}, headers=admin)
    assert moved.status_code == 422
    assert client.get(f"/v1/campaigns/{campaign['id']}", headers=admin).get_json()["flight"] == campaign["flight"]


def test_list_campaigns_filters_by_school(client, admin, make_school, make_campaign):
    first, second = make_school(), make_school(name="Second")
    mine = make_campaign(first, with_ad=False)
    make_campaign(second, with_ad=False)

    page = client.get(f"/v1/campaigns?school_id={first['id']}", headers=admin).get_json()

    assert [c["id"] for c in page["data"]] == [mine["id"]]
    assert page["next_cursor"] is None


def test_ads_are_created_listed_read_and_updated(client, admin, make_school, make_campaign):
    campaign = make_campaign(make_school(), with_ad=False)
    created = client.post(f"/v1/campaigns/{campaign['id']}/ads", json=AD_BODY, headers=admin)
    assert created.status_code == 201
    ad = created.get_json()
    assert ad["campaign_id"] == campaign["id"] and ad["tags"] == AD_BODY["tags"]

    listed = client.get(f"/v1/campaigns/{campaign['id']}/ads", headers=admin).get_json()
    assert [a["id"] for a in listed["data"]] == [ad["id"]]

    patched = client.patch(f"/v1/campaigns/{campaign['id']}/ads/{ad['id']}", json={"status": "paused"},
                           headers=admin).get_json()  # fmt: skip
    assert patched["status"] == "paused" and patched["headline"] == AD_BODY["headline"]
    assert client.get(f"/v1/campaigns/{campaign['id']}/ads/{ad['id']}", headers=admin).get_json() == patched


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"landing_url": "not a url"}, "landing_url"),
        ({"landing_url": "javascript:alert(1)"}, "landing_url"),
        ({"headline": ""}, "headline"),
        ({"bullets": ["x"] * 11}, "bullets"),
        ({"tags": [""]}, "tags.0"),
        ({"status": "archived"}, "status"),
    ],
)
def test_invalid_ad_fields_are_named(client, admin, make_school, make_campaign, override, field):
    campaign = make_campaign(make_school(), with_ad=False)
    response = client.post(f"/v1/campaigns/{campaign['id']}/ads", json={**AD_BODY, **override}, headers=admin)
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]


def test_an_ad_under_another_campaign_is_404(client, admin, make_school, make_campaign):
    school = make_school()
    first, second = make_campaign(school), make_campaign(school)
    response = client.get(f"/v1/campaigns/{second['id']}/ads/{first['ad']['id']}", headers=admin)
    assert response.status_code == 404


def test_interests_are_public_and_cip_based(client):
    response = client.get("/v1/interests")
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert len(data) >= 40
    by_slug = {item["slug"]: item for item in data}
    assert by_slug["medical-office-management"]["cip_code"] == "51.0705"
    assert by_slug["registered-nursing"]["cip_code"] == "51.3801"
