"""Ranking, one ad per school, budgets, lead caps, pacing and frequency caps, through GET /v1/ads."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from adserver import clock
from adserver.ids import new_id
from adserver.services.serving import counters
from tests.conftest import bearer
from tests.serving.conftest import served_ids, set_spend, submit_lead


def test_ads_are_ranked_by_expected_value_per_impression(make_school: Any, make_campaign: Any, ads: Any) -> None:
    # With no history, value is bid x prior rate: CPC 300 x 2% = 6 cents, CPL 4500 x 0.4% = 18, CPL 2000 = 8.
    cpc = make_campaign(make_school(name="Click College"), pricing={"model": "cpc", "bid_cents": 300})
    high = make_campaign(make_school(name="High Bid U"), pricing={"model": "cpl", "bid_cents": 4500})
    low = make_campaign(make_school(name="Low Bid U"), pricing={"model": "cpl", "bid_cents": 2000})
    body = ads()
    assert served_ids(body) == [high["id"], low["id"], cpc["id"]]
    assert [ad["rank"] for ad in body["ads"]] == [1, 2, 3]


def test_history_moves_a_campaign_down_and_a_new_one_gets_the_prior(
    make_school: Any, make_campaign: Any, ads: Any, redis_db: Any
) -> None:
    seasoned = make_campaign(make_school(name="Seasoned U"), pricing={"model": "cpl", "bid_cents": 4500})
    newcomer = make_campaign(make_school(name="Newcomer U"), pricing={"model": "cpl", "bid_cents": 3000})
    # 10,000 impressions without a lead: the smoothed rate is 0.8/10,200, far below the prior.
    redis_db.hset(counters.history_key(seasoned["id"]), "i", 10_000)
    assert served_ids(ads()) == [newcomer["id"], seasoned["id"]]
    # 100 leads in 10,000 impressions (1%) beats the newcomer's prior.
    redis_db.hset(counters.history_key(seasoned["id"]), "k", 100)
    assert served_ids(ads()) == [seasoned["id"], newcomer["id"]]


def test_a_cpl_campaign_whose_leads_come_back_loses_rank(
    app: Any, client: Any, make_school: Any, make_campaign: Any, ads: Any, publisher: dict[str, Any], admin: Any,
    redis_db: Any,
) -> None:  # fmt: skip
    unlimited = {"budget": {"daily_cents": None, "total_cents": None},
                 "caps": {"leads_per_day": None, "leads_per_month": None}}  # fmt: skip
    returns = make_campaign(make_school(name="Returns U", delivery={"method": "pull"}),
                            pricing={"model": "cpl", "bid_cents": 4500}, **unlimited)  # fmt: skip
    steady = make_campaign(make_school(name="Steady U", delivery={"method": "pull"}),
                           pricing={"model": "cpl", "bid_cents": 4000}, **unlimited)  # fmt: skip
    for campaign in (returns, steady):
        redis_db.hset(counters.history_key(campaign["id"]), "i", 1_000)
    lead_ids: list[str] = []
    for _ in range(10):
        served = {ad["campaign_id"]: ad for ad in ads()["ads"]}
        for campaign in (returns, steady):
            response = submit_lead(app, client, publisher, served[campaign["id"]])
            assert response.status_code == 201
            if campaign is returns:
                lead_ids.append(response.get_json()["id"])
    # 10 leads in about 1,000 impressions each: the higher bid ranks first.
    assert served_ids(ads()) == [returns["id"], steady["id"]]

    school_key = client.post(f"/v1/schools/{returns['school_id']}/keys", headers=admin).get_json()["secret_key"]
    for lead_id in lead_ids[:6]:
        response = client.post(f"/v1/leads/{lead_id}/return", json={"reason": "invalid_phone"},
                               headers=bearer(school_key))  # fmt: skip
        assert response.status_code == 200
    # Four kept leads against the other's ten: the school's returns cost it its rank.
    assert served_ids(ads()) == [steady["id"], returns["id"]]


def test_equal_scores_are_ordered_at_random(make_school: Any, make_campaign: Any, ads: Any) -> None:
    ids = [make_campaign(make_school(name=f"Twin {n}"))["id"] for n in range(3)]
    firsts = Counter(served_ids(ads())[0] for _ in range(60))
    assert set(firsts) == set(ids)


def test_one_ad_per_school_and_the_limit(make_school: Any, make_campaign: Any, ads: Any) -> None:
    school = make_school()
    make_campaign(school, pricing={"model": "cpl", "bid_cents": 4500})
    make_campaign(school, pricing={"model": "cpl", "bid_cents": 5000})
    others = [make_campaign(make_school(name=f"Other {n}")) for n in range(3)]
    body = ads(limit=10)
    schools = [ad["school"]["id"] for ad in body["ads"]]
    assert len(schools) == len(set(schools)) == 4
    best = next(ad for ad in body["ads"] if ad["school"]["id"] == school["id"])
    assert best["rank"] == 1  # the school's better campaign (5000) is the one shown
    assert len(ads(limit=2)["ads"]) == 2
    assert others


def test_limit_out_of_range_is_a_validation_error(client: Any, publisher: dict[str, Any], ads: Any) -> None:
    for limit in ("0", "11", "many"):
        body = ads(expect=422, limit=limit)
        assert body["error"]["code"] == "validation_error" and "limit" in body["error"]["fields"]
    assert ads(expect=422, interest="underwater-basketry")["error"]["fields"]["interest"]


def test_daily_and_total_budgets_stop_serving_at_once(
    make_school: Any, make_campaign: Any, ads: Any, explain: Any, redis_db: Any
) -> None:
    campaign = make_campaign(make_school(), pricing={"model": "cpc", "bid_cents": 300},
                             budget={"daily_cents": 1000, "total_cents": 5000})  # fmt: skip
    cid = campaign["id"]
    day = counters.local_day("America/Phoenix", clock.now())
    set_spend(redis_db, cid, day=day, day_cents=400)  # 40% spent at noon: on pace
    assert served_ids(ads()) == [cid]
    set_spend(redis_db, cid, day=day, day_cents=800)  # one more click (300) would pass 1000
    assert ads()["count"] == 0
    assert explain()[cid] == "budget"
    clock.set_now(datetime(2026, 11, 27, 8, 0, tzinfo=UTC))  # a new day in Phoenix (01:00)
    assert served_ids(ads()) == [cid]
    set_spend(redis_db, cid, total_cents=4800)
    assert ads()["count"] == 0
    assert explain()[cid] == "budget"


def _count_cpl_lead(campaign_id: str) -> None:
    """What intake records in Redis for an accepted $45 lead."""
    lead = counters.AcceptedLead(new_id("lead"), campaign_id, "America/Phoenix", 4500, "cpl", clock.now())
    counters.record_leads_accepted([lead])


def test_a_cpl_campaign_stops_when_one_more_lead_would_pass_its_budget(
    make_school: Any, make_campaign: Any, ads: Any, explain: Any, app: Any
) -> None:
    campaign = make_campaign(make_school(), pricing={"model": "cpl", "bid_cents": 4500},
                             budget={"daily_cents": None, "total_cents": 10000})  # fmt: skip
    with app.app_context():
        _count_cpl_lead(campaign["id"])
        assert served_ids(ads()) == [campaign["id"]]  # 4500 spent: one more lead fits
        _count_cpl_lead(campaign["id"])
    assert ads()["count"] == 0  # 9000 spent: a third lead would pass 10000
    assert explain()[campaign["id"]] == "budget"


def test_daily_and_monthly_lead_caps(make_school: Any, make_campaign: Any, ads: Any, explain: Any, app: Any) -> None:
    daily = make_campaign(make_school(name="Daily Cap U"), caps={"leads_per_day": 2, "leads_per_month": None},
                          budget={"daily_cents": None, "total_cents": None})  # fmt: skip
    monthly = make_campaign(make_school(name="Monthly Cap U"), caps={"leads_per_day": None, "leads_per_month": 3},
                            budget={"daily_cents": None, "total_cents": None})  # fmt: skip
    with app.app_context():
        for _ in range(2):
            _count_cpl_lead(daily["id"])
            _count_cpl_lead(monthly["id"])
    assert served_ids(ads()) == [monthly["id"]]
    assert explain()[daily["id"]] == "lead_cap"
    clock.set_now(datetime(2026, 11, 28, 19, 0, tzinfo=UTC))  # two days later, same month
    assert set(served_ids(ads())) == {daily["id"], monthly["id"]}
    with app.app_context():
        _count_cpl_lead(monthly["id"])
    assert served_ids(ads()) == [daily["id"]]
    assert explain()[monthly["id"]] == "lead_cap"
    clock.set_now(datetime(2026, 12, 1, 19, 0, tzinfo=UTC))  # a new month
    assert set(served_ids(ads())) == {daily["id"], monthly["id"]}


def test_pacing_holds_a_campaign_that_spends_ahead_of_the_day(
    make_school: Any, make_campaign: Any, ads: Any, explain: Any, redis_db: Any
) -> None:
    campaign = make_campaign(make_school(), pricing={"model": "cpc", "bid_cents": 100},
                             budget={"daily_cents": 10000, "total_cents": None})  # fmt: skip
    cid = campaign["id"]
    day = counters.local_day("America/Phoenix", clock.now())
    # 06:00 in Phoenix: a quarter of the day has passed.
    clock.set_now(datetime(2026, 11, 26, 13, 0, tzinfo=UTC))
    set_spend(redis_db, cid, day=day, day_cents=2900)  # 29%: within the 5% allowance
    assert served_ids(ads()) == [cid]
    set_spend(redis_db, cid, day=day, day_cents=4000)  # 40%: ahead of pace
    assert ads()["count"] == 0
    assert explain()[cid] == "pacing"
    clock.set_now(datetime(2026, 11, 26, 17, 0, tzinfo=UTC))  # 10:00: 42% of the day has passed
    assert served_ids(ads()) == [cid]


def test_pacing_spreads_over_the_serving_hours(
    make_school: Any, make_campaign: Any, ads: Any, explain: Any, redis_db: Any
) -> None:
    campaign = make_campaign(make_school(), pricing={"model": "cpc", "bid_cents": 100},
                             budget={"daily_cents": 10000, "total_cents": None},
                             flight={"start": "2026-01-01", "end": None, "hours": [8, 18],
                                     "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]})  # fmt: skip
    cid = campaign["id"]
    day = counters.local_day("America/Phoenix", clock.now())
    set_spend(redis_db, cid, day=day, day_cents=5000)
    clock.set_now(datetime(2026, 11, 26, 17, 0, tzinfo=UTC))  # 10:00: 20% of 08:00-18:00
    assert explain()[cid] == "pacing"
    clock.set_now(datetime(2026, 11, 26, 20, 0, tzinfo=UTC))  # 13:00: 50%
    assert served_ids(ads()) == [cid]


def test_frequency_cap_per_visitor_per_day(make_school: Any, make_campaign: Any, ads: Any, explain: Any) -> None:
    campaign = make_campaign(make_school(), frequency_cap={"impressions_per_day": 2})
    cid = campaign["id"]
    assert served_ids(ads(visitor_id="v1")) == [cid]
    assert served_ids(ads(visitor_id="v1")) == [cid]
    assert ads(visitor_id="v1")["count"] == 0
    assert explain(visitor_id="v1")[cid] == "frequency_cap"
    assert served_ids(ads(visitor_id="v2")) == [cid]
    clock.set_now(datetime(2026, 11, 27, 19, 0, tzinfo=UTC))  # the next day in Phoenix
    assert served_ids(ads(visitor_id="v1")) == [cid]


def test_explain_counts_no_impression(
    make_school: Any, make_campaign: Any, explain: Any, ads: Any, redis_db: Any
) -> None:
    campaign = make_campaign(make_school(), frequency_cap={"impressions_per_day": 1})
    for _ in range(3):
        assert explain(visitor_id="v1")[campaign["id"]] == "eligible"
    assert redis_db.xlen(counters.IMPRESSION_STREAM) == 0
    assert served_ids(ads(visitor_id="v1")) == [campaign["id"]]
    assert redis_db.xlen(counters.IMPRESSION_STREAM) == 1


def test_explain_gives_scores_and_needs_an_admin_key(
    client: Any, publisher: dict[str, Any], admin: dict[str, str], make_school: Any, make_campaign: Any
) -> None:
    from tests.conftest import bearer

    campaign = make_campaign(make_school(), pricing={"model": "cpl", "bid_cents": 4500})
    body = client.get("/v1/ads/explain?postal_code=85004", headers=admin).get_json()
    assert body["location"]["region"] == "AZ"
    assert body["campaigns"] == [{"campaign_id": campaign["id"], "school_id": campaign["school_id"],
                                  "eligible": True, "excluded_by": None, "score": 18.0}]  # fmt: skip
    response = client.get("/v1/ads/explain?postal_code=85004", headers=bearer(publisher["secret_key"]))
    assert response.status_code == 403


def test_the_ranking_puts_better_values_first_and_draws_ties_anew() -> None:
    from types import SimpleNamespace

    from adserver.services.serving.history import rank_campaigns

    campaigns = [SimpleNamespace(id=f"c{n}", prior_value=1.0) for n in range(6)]
    index: Any = SimpleNamespace(campaigns=campaigns)
    values = {"c1": 9.0, "c4": 5.0}  # the others keep their prior, 1.0: a four-way tie
    firsts_of_tie = set()
    for version in range(40):
        ranking = rank_campaigns(index, values, version)
        assert ranking.by_rank[:2] == [1, 4]
        assert sorted(ranking.by_rank[2:]) == [0, 2, 3, 5]
        assert all(ranking.by_rank[ranking.rank_of[p]] == p for p in range(6))
        firsts_of_tie.add(ranking.by_rank[2])
    assert firsts_of_tie == {0, 2, 3, 5}
