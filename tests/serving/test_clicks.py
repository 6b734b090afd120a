"""Click links: signed, counted once per impression, 24-hour expiry, bots and prefetches not billed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask.testing import FlaskClient
from sqlalchemy import select

from adserver import clock
from adserver.extensions import db
from adserver.models import Click, Impression
from adserver.services.reporting import events
from adserver.services.serving import counters

HUMAN = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                       "Chrome/131.0.0.0 Safari/537.36"}  # fmt: skip
GOOGLEBOT = {"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}


def _click_path(ad: dict[str, Any]) -> str:
    return urlsplit(ad["click_url"]).path


def _cpc_ad(make_school: Any, make_campaign: Any, ads: Any, **overrides: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    overrides.setdefault("budget", {"daily_cents": None, "total_cents": None})
    campaign = make_campaign(make_school(), pricing={"model": "cpc", "bid_cents": 300}, **overrides)
    return campaign, ads()["ads"][0]


def _money(campaign: dict[str, Any]) -> counters.Money:
    return counters.read_money(campaign["id"], counters.local_day("America/Phoenix", clock.now()))


def _persisted_clicks(app: Any) -> list[Click]:
    with app.app_context():
        events.persist_clicks()
        rows = list(db.session.scalars(select(Click).order_by(Click.at, Click.id)))
        db.session.expunge_all()
        return rows


def test_a_click_redirects_with_utm_and_is_counted_and_charged_once(
    client: FlaskClient, app: Any, make_school: Any, make_campaign: Any, ads: Any, publisher: dict[str, Any],
    redis_db: Any,
) -> None:  # fmt: skip
    campaign, ad = _cpc_ad(make_school, make_campaign, ads)
    first = client.get(_click_path(ad), headers=HUMAN)
    assert first.status_code == 302
    location = urlsplit(first.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://example.edu/health-admin"
    assert parse_qs(location.query) == {"utm_source": [publisher["id"]], "utm_medium": ["referral"]}

    again = client.get(_click_path(ad), headers=HUMAN)
    assert again.status_code == 302 and again.headers["Location"] == first.headers["Location"]

    money = _money(campaign)
    assert (money.spend_day, money.spend_total) == (300, 300)
    rows = _persisted_clicks(app)
    # Both clicks share the frozen test clock, so their order in the table is not defined.
    assert sorted(((r.counted, r.spend_cents, r.impression_id) for r in rows), reverse=True) == [
        (True, 300, ad["impression_id"]), (False, 0, ad["impression_id"])
    ]  # fmt: skip


def test_utm_parameters_replace_existing_ones_and_keep_the_rest(
    client: FlaskClient, admin: dict[str, str], make_school: Any, make_campaign: Any, ads: Any
) -> None:
    campaign = make_campaign(make_school())
    landing = {"landing_url": "https://example.edu/apply?program=hca&utm_source=old"}
    client.patch(f"/v1/campaigns/{campaign['id']}/ads/{campaign['ad']['id']}", json=landing, headers=admin)
    ad = ads()["ads"][0]
    query = parse_qs(urlsplit(client.get(_click_path(ad), headers=HUMAN).headers["Location"]).query)
    assert query["program"] == ["hca"] and query["utm_medium"] == ["referral"] and len(query["utm_source"]) == 1


def test_a_tampered_token_is_404(client: FlaskClient, make_school: Any, make_campaign: Any, ads: Any) -> None:
    _, ad = _cpc_ad(make_school, make_campaign, ads)
    path = _click_path(ad)
    token = path.rsplit("/", 1)[1]
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (flipped, token[:-1], "nonsense", ad["lead_token"]):
        response = client.get(f"/v1/click/{bad}", headers=HUMAN)
        assert response.status_code == 404, bad
        assert response.get_json()["error"]["code"] == "not_found"


def test_an_expired_token_redirects_but_is_not_counted(
    client: FlaskClient, app: Any, make_school: Any, make_campaign: Any, ads: Any, redis_db: Any
) -> None:
    campaign, ad = _cpc_ad(make_school, make_campaign, ads)
    clock.set_now(datetime.now(UTC) + timedelta(hours=24, minutes=1))
    response = client.get(_click_path(ad), headers=HUMAN)
    assert response.status_code == 302
    assert _money(campaign).spend_total == 0
    assert [r.counted for r in _persisted_clicks(app)] == [False]


def test_bots_and_prefetches_are_redirected_flagged_and_not_billed(
    client: FlaskClient, app: Any, make_school: Any, make_campaign: Any, ads: Any, redis_db: Any
) -> None:
    campaign, ad = _cpc_ad(make_school, make_campaign, ads)
    assert client.get(_click_path(ad), headers=GOOGLEBOT).status_code == 302
    assert client.get(_click_path(ad), headers={**HUMAN, "Sec-Purpose": "prefetch"}).status_code == 302
    assert _money(campaign).spend_total == 0
    # The person who clicks afterwards is counted: the bot did not use up the impression's click.
    assert client.get(_click_path(ad), headers=HUMAN).status_code == 302
    assert _money(campaign).spend_total == 300
    rows = _persisted_clicks(app)
    assert sorted((r.is_bot, r.counted) for r in rows) == [(False, True), (True, False), (True, False)]


def test_impressions_served_to_bots_are_flagged(
    client: FlaskClient, app: Any, make_school: Any, make_campaign: Any, publisher: dict[str, Any]
) -> None:
    make_campaign(make_school())
    from tests.conftest import bearer

    for headers in (GOOGLEBOT, HUMAN):
        response = client.get("/v1/ads?postal_code=85004", headers={**bearer(publisher["secret_key"]), **headers})
        assert response.get_json()["count"] == 1
    with app.app_context():
        assert events.persist_impressions() == 2
        flags = sorted(r.is_bot for r in db.session.scalars(select(Impression)))
    assert flags == [False, True]


def test_cpc_spend_never_passes_a_budget(
    client: FlaskClient, make_school: Any, make_campaign: Any, ads: Any, redis_db: Any, explain: Any
) -> None:
    campaign = make_campaign(make_school(), pricing={"model": "cpc", "bid_cents": 300},
                             budget={"daily_cents": None, "total_cents": 1000})  # fmt: skip
    served = [ads(visitor_id=f"v{n}")["ads"][0] for n in range(5)]
    for ad in served:
        assert client.get(_click_path(ad), headers=HUMAN).status_code == 302
    # Three clicks fit in 1000; the fourth and fifth are counted but not charged.
    assert _money(campaign).spend_total == 900
    assert ads()["count"] == 0
    assert explain()[campaign["id"]] == "budget"


def test_cpl_clicks_are_counted_but_not_charged(
    client: FlaskClient, app: Any, make_school: Any, make_campaign: Any, ads: Any, redis_db: Any
) -> None:
    campaign = make_campaign(make_school())
    ad = ads()["ads"][0]
    assert client.get(_click_path(ad), headers=HUMAN).status_code == 302
    assert _money(campaign).spend_total == 0
    assert [(r.counted, r.spend_cents) for r in _persisted_clicks(app)] == [(True, 0)]
