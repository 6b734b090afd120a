"""Each campaign rule, through GET /v1/ads: one request it lets through and one it stops.

The clock is pinned to Thursday 2026-11-26, 12:00 in Phoenix (see conftest)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from adserver import clock
from tests.serving.conftest import served_ids


def _targeting(**overrides: Any) -> dict[str, Any]:
    targeting: dict[str, Any] = {
        "interests": [], "degree_levels": [], "modalities": [], "countries": [],
        "regions": [], "exclude_regions": [], "postal_codes": [], "radius_miles": None,
    }  # fmt: skip
    targeting.update(overrides)
    return targeting


def _flight(**overrides: Any) -> dict[str, Any]:
    flight: dict[str, Any] = {"start": "2026-01-01", "end": None,
                              "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "hours": [0, 24]}  # fmt: skip
    flight.update(overrides)
    return flight


# (campaign overrides, request that matches, request that does not, the rule explain names)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any], str]] = {
    "interest": ({"targeting": _targeting(interests=["healthcare-administration"])},
                 {"interest": "healthcare-administration"}, {"interest": "registered-nursing"}, "interest"),
    "degree_level": ({"targeting": _targeting(degree_levels=["bachelor"])},
                     {"degree_level": "bachelor"}, {"degree_level": "master"}, "degree_level"),
    "modality": ({"targeting": _targeting(modalities=["online"])},
                 {"modality": "online"}, {"modality": "campus"}, "modality"),
    "country": ({"targeting": _targeting(countries=["CA"])},
                {"postal_code": "K1A 0B1"}, {"postal_code": "85004"}, "country"),
    "region include": ({"targeting": _targeting(regions=["AZ"])},
                       {"postal_code": "85004"}, {"postal_code": "33620"}, "region"),
    "region exclude": ({"targeting": _targeting(exclude_regions=["FL"])},
                       {"postal_code": "85004"}, {"postal_code": "33620"}, "region"),
    "postal code": ({"targeting": _targeting(postal_codes=["85004"])},
                    {"postal_code": "85004"}, {"postal_code": "85281"}, "postal_code"),
    # The campus is in Tempe (85281): Phoenix is ~8 miles away, Tucson ~100.
    "radius": ({"targeting": _targeting(radius_miles=25)},
               {"postal_code": "85004"}, {"postal_code": "85701"}, "radius"),
    "flight start": ({"flight": _flight(start="2026-11-26")}, {}, None, "flight"),
    "flight end": ({"flight": _flight(start="2026-01-01", end="2026-11-26")}, {}, None, "flight"),
    "days": ({"flight": _flight(days=["thu"])}, {}, None, "schedule"),
    "hours": ({"flight": _flight(hours=[12, 13])}, {}, None, "schedule"),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_each_targeting_rule_lets_matching_visits_through_and_stops_others(
    case: str, make_school: Any, make_campaign: Any, ads: Any, explain: Any
) -> None:
    overrides, matching, other, rule = CASES[case]
    campaign = make_campaign(make_school(), **overrides)
    assert served_ids(ads(**matching)) == [campaign["id"]]
    if other is not None:
        assert ads(**other)["count"] == 0
        assert explain(**other)[campaign["id"]] == rule


@pytest.mark.parametrize(
    ("moment", "rule"),
    [
        (datetime(2026, 11, 25, 19, 0, tzinfo=UTC), "flight"),  # the day before the flight starts
        (datetime(2026, 11, 27, 19, 0, tzinfo=UTC), "flight"),  # the day after it ends
        (datetime(2026, 11, 26, 18, 59, tzinfo=UTC), "schedule"),  # 11:59 in Phoenix, before the hours
        (datetime(2026, 11, 26, 20, 0, tzinfo=UTC), "schedule"),  # 13:00, the end hour is excluded
    ],
)
def test_flight_dates_and_hours_are_in_the_school_time_zone(
    moment: datetime, rule: str, make_school: Any, make_campaign: Any, ads: Any, explain: Any
) -> None:
    campaign = make_campaign(make_school(), flight=_flight(start="2026-11-26", end="2026-11-26", hours=[12, 13]))
    assert served_ids(ads()) == [campaign["id"]]
    clock.set_now(moment)
    assert ads()["count"] == 0
    assert explain()[campaign["id"]] == rule


def test_days_follow_the_school_time_zone_not_utc(make_school: Any, make_campaign: Any, ads: Any) -> None:
    # 2026-11-27 03:00 UTC is still Thursday evening (20:00) in Phoenix.
    campaign = make_campaign(make_school(), flight=_flight(days=["thu"]))
    clock.set_now(datetime(2026, 11, 27, 3, 0, tzinfo=UTC))
    assert served_ids(ads()) == [campaign["id"]]
    clock.set_now(datetime(2026, 11, 27, 8, 0, tzinfo=UTC))  # Friday 01:00 in Phoenix
    assert ads()["count"] == 0


def test_only_active_campaigns_with_active_ads_serve(
    client: Any, admin: dict[str, str], make_school: Any, make_campaign: Any, ads: Any, explain: Any
) -> None:
    paused = make_campaign(make_school(name="Paused College"), status="paused")
    no_ad = make_campaign(make_school(name="No Ad College"), with_ad=False)
    live = make_campaign(make_school())
    assert served_ids(ads()) == [live["id"]]
    reasons = explain()
    assert reasons[paused["id"]] == "status" and reasons[no_ad["id"]] == "status"

    client.patch(f"/v1/campaigns/{live['id']}", json={"status": "paused"}, headers=admin)
    assert ads()["count"] == 0
    client.patch(f"/v1/campaigns/{paused['id']}", json={"status": "active"}, headers=admin)
    assert served_ids(ads()) == [paused["id"]]


def test_publisher_allow_and_deny_lists(
    make_school: Any, make_campaign: Any, make_publisher: Any, ads: Any, explain: Any, publisher: dict[str, Any]
) -> None:
    other = make_publisher(name="Other Guides", domains=["other.example"])
    allowed = make_campaign(make_school(name="Allow U"), publishers={"allow": [publisher["id"]], "deny": []})
    denied = make_campaign(make_school(name="Deny U"), publishers={"allow": [], "deny": [publisher["id"]]})
    assert served_ids(ads()) == [allowed["id"]]
    from tests.conftest import bearer

    assert served_ids(ads(headers=bearer(other["secret_key"]))) == [denied["id"]]
    reasons = explain(publisher_id=publisher["id"])
    assert reasons[allowed["id"]] == "eligible" and reasons[denied["id"]] == "publisher"


def test_programs_listed_are_only_those_matching_the_request(make_school: Any, make_campaign: Any, ads: Any) -> None:
    programs = [
        {"name": "BS Health Care Administration", "interest": "healthcare-administration",
         "degree_level": "bachelor", "modality": "online"},
        {"name": "MS Health Care Administration", "interest": "healthcare-administration",
         "degree_level": "master", "modality": "online"},
        {"name": "AAS Medical Office Management", "interest": "medical-office-management",
         "degree_level": "associate", "modality": "campus"},
    ]  # fmt: skip
    make_campaign(make_school(programs=programs), targeting=_targeting())
    ad = ads(interest="healthcare-administration")["ads"][0]
    assert ad["programs_found"] == 2
    assert {p["name"] for p in ad["programs"]} == {"BS Health Care Administration", "MS Health Care Administration"}
    ad = ads(interest="healthcare-administration", degree_level="master")["ads"][0]
    assert [p["name"] for p in ad["programs"]] == ["MS Health Care Administration"]
    assert ads(interest="registered-nursing")["count"] == 0


def test_the_answer_carries_what_the_widget_shows(make_school: Any, make_campaign: Any, ads: Any) -> None:
    school = make_school()
    campaign = make_campaign(school)
    body = ads(zip="85004-1234", interest="healthcare-administration")
    assert body["location"] == {"postal_code": "85004", "country": "US", "region": "AZ"}
    assert body["request_id"] and body["count"] == 1
    ad = body["ads"][0]
    assert ad["rank"] == 1 and ad["ad_id"] == campaign["ad"]["id"] and ad["campaign_id"] == campaign["id"]
    assert ad["school"] == {"id": school["id"], "name": school["name"], "logo_url": school["logo_url"]}
    assert ad["headline"] == campaign["ad"]["headline"] and ad["badge"] == "Good for Working Adults"
    assert ad["bullets"] and ad["tags"] == ["Online Courses", "Financial Aid"]
    assert ad["click_url"].startswith("http://localhost:8000/v1/click/")
    assert ad["lead_token"] and ad["impression_id"].startswith("imp_")
    assert ad["consent_text"] == school["consent_text"]
