"""Budgets and lead caps hold after Redis loses its data: the live counters are rebuilt from the
database before a campaign serves or is charged again, and no counter write counts twice when the
redis client sends it again after a lost reply."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask.testing import FlaskClient
from sqlalchemy import func, select

from adserver import clock
from adserver.extensions import db
from adserver.ids import new_id
from adserver.models import Click
from adserver.services.reporting import events
from adserver.services.serving import counters, decision_script
from adserver.services.serving.decision_script import Candidate
from adserver.services.serving.index import current_index
from tests.leads.conftest import wait_for
from tests.serving.conftest import served_ids, submit_lead
from tests.serving.test_clicks import HUMAN

NO_LIMITS = {"leads_per_day": None, "leads_per_month": None}


def _click(client: FlaskClient, ad: dict[str, Any]) -> None:
    assert client.get(urlsplit(ad["click_url"]).path, headers=HUMAN).status_code == 302


def _billed(app: Any, campaign_id: str) -> int:
    """What the clicks table bills the campaign, once the click stream is persisted."""
    with app.app_context():
        events.persist_clicks()
        spent = db.session.scalar(
            select(func.coalesce(func.sum(Click.spend_cents), 0)).where(Click.campaign_id == campaign_id, Click.counted)
        )
        db.session.rollback()
        return int(spent)


def _money(campaign: dict[str, Any]) -> counters.Money:
    return counters.read_money(campaign["id"], counters.local_day("America/Phoenix", clock.now()))


def test_a_cpc_budget_is_never_passed_after_redis_loses_its_data(
    app: Any, client: FlaskClient, make_school: Any, make_campaign: Any, ads: Any, explain: Any, redis_db: Any
) -> None:
    campaign = make_campaign(make_school(), pricing={"model": "cpc", "bid_cents": 300},
                             budget={"daily_cents": None, "total_cents": 1500}, caps=NO_LIMITS)  # fmt: skip
    served = [ads(visitor_id=f"v{n}")["ads"][0] for n in range(8)]
    for ad in served[:3]:
        _click(client, ad)
    assert _billed(app, campaign["id"]) == 900  # in the clicks table
    _click(client, served[3])  # charged in Redis, still in the click stream
    assert _money(campaign).spend_total == 1200

    redis_db.flushdb()  # the last click's charge and its stream entry go with everything else
    for ad in served[4:]:
        _click(client, ad)
    # Rebuilt from the table (900), two more clicks fit in 1500; the last two are not charged.
    billed = _billed(app, campaign["id"])
    assert billed == 1500
    assert _money(campaign).spend_total == billed
    assert ads()["count"] == 0
    assert explain()[campaign["id"]] == "budget"


def test_a_click_rebuilds_its_campaigns_missing_counters_before_charging(
    app: Any, client: FlaskClient, make_school: Any, make_campaign: Any, ads: Any, redis_db: Any
) -> None:
    campaign = make_campaign(make_school(), pricing={"model": "cpc", "bid_cents": 300},
                             budget={"daily_cents": 1000, "total_cents": None}, caps=NO_LIMITS)  # fmt: skip
    served = [ads(visitor_id=f"v{n}")["ads"][0] for n in range(5)]
    for ad in served[:2]:
        _click(client, ad)
    assert _billed(app, campaign["id"]) == 600
    redis_db.delete(counters.money_key(campaign["id"]))  # only this campaign's counters are lost
    for ad in served[2:]:
        _click(client, ad)
    assert _billed(app, campaign["id"]) == 900  # 600 rebuilt, then one more click fits in 1000
    assert (_money(campaign).spend_day, _money(campaign).spend_total) == (900, 900)


def test_a_cpl_daily_budget_holds_after_redis_loses_its_data(
    app: Any, client: FlaskClient, make_school: Any, make_campaign: Any, ads: Any, explain: Any, redis_db: Any,
    publisher: dict[str, Any],
) -> None:  # fmt: skip
    campaign = make_campaign(make_school(delivery={"method": "pull"}), pricing={"model": "cpl", "bid_cents": 4500},
                             budget={"daily_cents": 10000, "total_cents": None}, caps=NO_LIMITS)  # fmt: skip
    for n in range(2):
        ad = ads(visitor_id=f"v{n}")["ads"][0]
        assert submit_lead(app, client, publisher, ad).status_code == 201
    assert ads()["count"] == 0  # 9000 spent: a third lead would pass 10000
    redis_db.flushdb()
    for _ in range(3):
        assert ads()["count"] == 0
        assert explain()[campaign["id"]] == "budget"
    assert _money(campaign).spend_day == 9000


def test_a_daily_lead_cap_holds_after_redis_loses_its_data(
    app: Any, client: FlaskClient, make_school: Any, make_campaign: Any, ads: Any, explain: Any, redis_db: Any,
    publisher: dict[str, Any],
) -> None:  # fmt: skip
    cap = {"leads_per_day": 2, "leads_per_month": None}
    campaign = make_campaign(make_school(delivery={"method": "pull"}), caps=cap,
                             budget={"daily_cents": None, "total_cents": None})  # fmt: skip
    for n in range(2):
        ad = ads(visitor_id=f"v{n}")["ads"][0]
        assert submit_lead(app, client, publisher, ad).status_code == 201
    assert explain()[campaign["id"]] == "lead_cap"
    redis_db.flushdb()
    for _ in range(3):
        assert ads()["count"] == 0
        assert explain()[campaign["id"]] == "lead_cap"
    assert _money(campaign).leads_day == 2


def test_a_campaign_whose_counters_are_missing_is_not_served_until_they_are_rebuilt(
    make_school: Any, make_campaign: Any, ads: Any, explain: Any, redis_db: Any
) -> None:
    campaign = make_campaign(make_school(), budget={"daily_cents": 100000, "total_cents": None})
    unlimited = make_campaign(make_school(name="No Limits U"), budget={"daily_cents": None, "total_cents": None},
                              caps=NO_LIMITS)  # fmt: skip
    assert set(served_ids(ads())) == {campaign["id"], unlimited["id"]}
    for cid in (campaign["id"], unlimited["id"]):
        redis_db.delete(counters.money_key(cid))
    # The first request to find them missing serves neither budget nor cap unchecked, and hands
    # them to the background rebuild; a campaign with no budget and no cap does not wait for it.
    assert explain() == {campaign["id"]: "budget", unlimited["id"]: "eligible"}
    wait_for(lambda: campaign["id"] in served_ids(ads()), 10, what="the rebuilt campaign to serve")


def test_an_ad_request_sent_again_after_a_lost_reply_counts_nothing_twice(
    app: Any, make_school: Any, make_campaign: Any, redis_db: Any
) -> None:
    campaign = make_campaign(make_school(), frequency_cap={"impressions_per_day": 5})
    day = counters.local_day("America/Phoenix", clock.now())
    index = current_index()
    entry = index.by_id[campaign["id"]]
    candidate = Candidate(index.specs[entry.position], 0, day, counters.NO_LIMIT)
    decision_id = new_id("imp")
    # The script as the redis client sends it, then the same call again.
    answers = [decision_script.run("serve", [candidate], decision_id=decision_id, limit=5, visitor_id="v1",
                                   request_json='{"request_id": "r1"}') for _ in range(2)]  # fmt: skip
    assert answers == ["S", "S"]
    assert redis_db.xlen(counters.IMPRESSION_STREAM) == 1
    assert redis_db.hget(counters.history_key(campaign["id"]), "i") == b"1"
    assert redis_db.hget(counters.frequency_key("v1"), f"{campaign['id']}:{day}") == b"1"


def test_a_click_sent_again_after_a_lost_reply_is_charged_once(
    app: Any, make_school: Any, make_campaign: Any, ads: Any, redis_db: Any
) -> None:
    campaign = make_campaign(make_school(), pricing={"model": "cpc", "bid_cents": 300},
                             budget={"daily_cents": None, "total_cents": None}, caps=NO_LIMITS)  # fmt: skip
    impression_id = ads()["ads"][0]["impression_id"]
    day = counters.local_day("America/Phoenix", clock.now())
    event: dict[str, object] = {"id": "clk_1", "impression_id": impression_id, "at": clock.now().isoformat(),
                                "publisher_id": None, "campaign_id": campaign["id"], "ad_id": campaign["ad"]["id"],
                                "school_id": campaign["school_id"], "is_bot": False}  # fmt: skip
    charges = [counters.record_click(click_id="clk_1", impression_id=impression_id, campaign_id=campaign["id"], day=day,
                                     price_cents=300, day_limit=counters.NO_LIMIT, total_limit=counters.NO_LIMIT,
                                     countable=True, event=event) for _ in range(2)]  # fmt: skip
    assert [(c.counted, c.charged_cents) for c in charges] == [(True, 300), (True, 300)]
    assert _money(campaign).spend_total == 300
    assert redis_db.hget(counters.history_key(campaign["id"]), "c") == b"1"
    assert redis_db.xlen(counters.CLICK_STREAM) == 1


def test_events_read_before_redis_lost_its_data_are_dropped_not_billed(
    app: Any, client: FlaskClient, make_school: Any, make_campaign: Any, ads: Any, redis_db: Any
) -> None:
    make_campaign(make_school(), pricing={"model": "cpc", "bid_cents": 300}, caps=NO_LIMITS)
    _click(client, ads()["ads"][0])
    events._ensure_group(redis_db, counters.CLICK_STREAM)
    read = redis_db.xreadgroup(events.GROUP, "worker-1", {counters.CLICK_STREAM: ">"}, count=10)
    entries = read[0][1]
    # The worker has read the click; Redis loses its data before the batch is committed.
    redis_db.flushdb()
    assert events._store(redis_db, events.CLICKS, entries, "worker-1") == 0
    assert db.session.scalar(select(func.count()).select_from(Click)) == 0
    # Without a loss, the same kind of batch is stored.
    _click(client, ads(visitor_id="v2")["ads"][0])
    assert events.persist_clicks() == 1
