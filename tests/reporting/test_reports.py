"""GET /v1/reports: a known mix of traffic and leads, driven through the public API, reported exactly.

Two schools (a CPL one that takes leads by http_post, a CPC one that pulls its feed), two
publishers, two days: ads (one request made for a bot by a publisher's server), human clicks, a
repeated click, a bot click, and leads that end delivered, rejected, failed, returned and pulled.
Every figure is checked for every grouping and every key's scope, and the CSV against the JSON.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from adserver import clock
from adserver.models.rollups import METRICS
from adserver.services.reporting import events
from adserver.services.reporting.reports import figures
from tests.conftest import bearer
from tests.leads.conftest import SchoolServer, Scripted, deliver_until_settled, person
from tests.serving.conftest import NOON_PHOENIX

HUMAN = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                       "Chrome/131.0.0.0 Safari/537.36"}  # fmt: skip
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
DAY_1 = NOON_PHOENIX.date().isoformat()
DAY_2 = (NOON_PHOENIX + timedelta(days=1)).date().isoformat()
DIMENSION_FIELDS = {"day": "day", "campaign": "campaign_id", "school": "school_id", "publisher": "publisher_id"}
GROUPINGS = ["day", "campaign", "school", "publisher", "day,campaign", "campaign,publisher",
             "day,campaign,school,publisher"]  # fmt: skip


class Mix:
    """What the test did, as facts keyed by (day, campaign, school, publisher): the expected report."""

    def __init__(self) -> None:
        self.facts: dict[tuple[str, str, str, str | None], Counter[str]] = {}

    def add(self, day: str, ad: dict[str, Any], publisher_id: str | None, **counts: int) -> None:
        key = (day, ad["campaign_id"], ad["school"]["id"], publisher_id)
        self.facts.setdefault(key, Counter()).update(counts)

    def rows(self, grouping: str, keep: Any = lambda key: True) -> list[dict[str, Any]]:
        dims = grouping.split(",")
        positions = [("day", "campaign", "school", "publisher").index(d) for d in dims]
        grouped: dict[tuple[Any, ...], Counter[str]] = {}
        for key, counts in self.facts.items():
            if keep(key):
                grouped.setdefault(tuple(key[p] for p in positions), Counter()).update(counts)
        rows = []
        for group in sorted(grouped, key=lambda g: tuple("" if v is None else v for v in g)):
            counts = {name: grouped[group][name] for name in METRICS}
            rows.append({**{DIMENSION_FIELDS[d]: v for d, v in zip(dims, group, strict=True)}, **figures(counts)})
        return rows

    def totals(self, keep: Any = lambda key: True) -> dict[str, Any]:
        total: Counter[str] = Counter()
        for key, counts in self.facts.items():
            if keep(key):
                total.update(counts)
        return figures({name: total[name] for name in METRICS})


@pytest.fixture
def mix(client: FlaskClient, app: Any, admin: dict[str, str], make_school: Any, make_campaign: Any,
        make_publisher: Any, school_server: SchoolServer) -> dict[str, Any]:  # fmt: skip
    cpl_school = make_school(name="Northbridge University", delivery={
        "method": "http_post", "url": school_server.url, "format": "json", "field_map": {}, "max_attempts": 1,
        "timeout_s": 2})  # fmt: skip
    cpc_school = make_school(name="Hollis Institute", delivery={"method": "pull"})
    no_limits = {"budget": {"daily_cents": None, "total_cents": None}, "caps": {"leads_per_day": None}}
    cpl = make_campaign(cpl_school, pricing={"model": "cpl", "bid_cents": 4500}, **no_limits)
    cpc = make_campaign(cpc_school, pricing={"model": "cpc", "bid_cents": 300}, **no_limits)
    first, second = make_publisher("Career Guides"), make_publisher("Nurse Paths", ["nursepaths.example"])
    expected = Mix()

    def serve(publisher: dict[str, Any], **params: Any) -> dict[str, dict[str, Any]]:
        response = client.get("/v1/ads", query_string={"postal_code": "85004", **params},
                              headers=bearer(publisher["secret_key"]))  # fmt: skip
        assert response.status_code == 200, response.get_json()
        served = {ad["campaign_id"]: ad for ad in response.get_json()["ads"]}
        assert set(served) == {cpl["id"], cpc["id"]}
        bot = "user_agent" in params
        for ad in served.values():
            expected.add(clock.now().date().isoformat(), ad, publisher["id"],
                         **{"bot_impressions" if bot else "impressions": 1})  # fmt: skip
        return served

    def click(ad: dict[str, Any], publisher: dict[str, Any], counted: bool, bot: bool = False) -> None:
        headers = {"User-Agent": GOOGLEBOT} if bot else HUMAN
        assert client.get(urlsplit(ad["click_url"]).path, headers=headers).status_code == 302
        spend = 300 if counted and ad["campaign_id"] == cpc["id"] else 0
        expected.add(clock.now().date().isoformat(), ad, publisher["id"], clicks=int(counted), bot_clicks=int(bot),
                     spend_cents=spend)  # fmt: skip

    def lead(ad: dict[str, Any], publisher: dict[str, Any]) -> str:
        body = {"lead_token": ad["lead_token"], **person()}
        response = client.post("/v1/leads", json=body, headers=bearer(publisher["secret_key"]))
        assert response.status_code == 201, response.get_json()
        return str(response.get_json()["id"])

    # Day 1 (Thursday noon in Phoenix).
    p1_a = serve(first)
    p1_b = serve(first)
    p2_a = serve(second)
    serve(second, user_agent=GOOGLEBOT)  # a publisher's server asking for a crawler visitor
    click(p1_a[cpc["id"]], first, counted=True)
    click(p1_a[cpc["id"]], first, counted=False)  # the same impression again: redirected, not counted
    click(p1_b[cpc["id"]], first, counted=False, bot=True)
    click(p1_a[cpl["id"]], first, counted=True)  # a CPL ad's click is counted, not billed

    school_server.answer(Scripted(200), Scripted(400, body=b"duplicate"), Scripted(500), Scripted(200))
    outcomes = {}
    for name, (ad, publisher) in {"delivered": (p1_a[cpl["id"]], first), "rejected": (p1_b[cpl["id"]], first),
                                  "failed": (p2_a[cpl["id"]], second),
                                  "returned": (p2_a[cpl["id"]], second)}.items():  # fmt: skip
        lead_id = lead(ad, publisher)
        assert deliver_until_settled(app, client, admin, lead_id)["status"] in ("delivered", "rejected", "failed")
        outcomes[name] = lead_id
        counts = {"leads": 1, "delivered": int(name in ("delivered", "returned")), "rejected": int(name == "rejected"),
                  "failed": int(name == "failed"), "spend_cents": 4500 if name == "delivered" else 0}  # fmt: skip
        expected.add(DAY_1, ad, publisher["id"], **counts)
    lead(p1_b[cpc["id"]], first)  # the pull school's lead is in its feed: delivered; its click paid for it
    expected.add(DAY_1, p1_b[cpc["id"]], first["id"], leads=1, delivered=1)

    # Day 2: more traffic, a late click on a day-1 ad, and the return of a day-1 lead.
    clock.set_now(NOON_PHOENIX + timedelta(days=1))
    p2_c = serve(second)
    click(p2_c[cpc["id"]], second, counted=True)
    click(p2_a[cpc["id"]], second, counted=True)
    school_key = client.post(f"/v1/schools/{cpl_school['id']}/keys", headers=admin).get_json()["secret_key"]
    returned = client.post(f"/v1/leads/{outcomes['returned']}/return", json={"reason": "invalid_phone"},
                           headers=bearer(school_key))  # fmt: skip
    assert returned.status_code == 200, returned.get_json()
    # Lead outcomes stay with the day the lead was accepted.
    expected.add(DAY_1, p2_a[cpl["id"]], second["id"], returned=1)

    with app.app_context():
        events.persist_impressions()
        events.persist_clicks()
    cpc_key = client.post(f"/v1/schools/{cpc_school['id']}/keys", headers=admin).get_json()["secret_key"]
    return {"expected": expected, "cpl": cpl, "cpc": cpc, "first": first, "second": second,
            "cpl_school_key": school_key, "cpc_school_key": cpc_key}  # fmt: skip


def _report(client: FlaskClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = client.get("/v1/reports", query_string={"from": DAY_1, "to": DAY_2, **params}, headers=headers)
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def _sorted(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: tuple("" if r.get(f) is None else r[f] for f in DIMENSION_FIELDS.values()))


def test_every_figure_for_every_grouping_as_an_admin(client: FlaskClient, admin: dict[str, str],
                                                     mix: dict[str, Any]) -> None:  # fmt: skip
    expected: Mix = mix["expected"]
    for grouping in GROUPINGS:
        body = _report(client, admin, group_by=grouping)
        assert _sorted(body["rows"]) == _sorted(expected.rows(grouping)), grouping
        assert body["totals"] == expected.totals()
    totals = _report(client, admin)["totals"]
    # The mix in plain numbers: 8 human impressions (4 requests, 2 ads each) and 2 for a bot; 4 counted
    # clicks, 3 of them on the CPC ad (900 cents), and 1 bot click; 5 leads: 2 CPL delivered (one then
    # returned), 1 rejected, 1 failed, 1 pulled by the CPC school; CPL spend 4500 for the one kept.
    assert (totals["impressions"], totals["bot_impressions"], totals["clicks"], totals["bot_clicks"]) == (8, 2, 4, 1)
    assert (totals["leads"], totals["delivered"], totals["rejected"], totals["failed"], totals["returned"]) == (
        5, 3, 1, 1, 1)  # fmt: skip
    assert totals["spend_cents"] == 3 * 300 + 4500
    assert (totals["ctr"], totals["lead_rate"], totals["cpl_cents"]) == (0.5, 0.625, 2700)


def test_a_school_sees_only_its_campaigns_and_a_publisher_only_its_traffic(
    client: FlaskClient, mix: dict[str, Any]
) -> None:
    expected: Mix = mix["expected"]
    scopes = {
        mix["cpl_school_key"]: lambda key: key[1] == mix["cpl"]["id"],
        mix["cpc_school_key"]: lambda key: key[1] == mix["cpc"]["id"],
        mix["first"]["secret_key"]: lambda key: key[3] == mix["first"]["id"],
        mix["second"]["secret_key"]: lambda key: key[3] == mix["second"]["id"],
    }
    for key, keep in scopes.items():
        for grouping in GROUPINGS:
            body = _report(client, bearer(key), group_by=grouping)
            assert _sorted(body["rows"]) == _sorted(expected.rows(grouping, keep)), grouping
            assert body["totals"] == expected.totals(keep)
    # Another school's campaign through a filter: nothing, not an error and not a hint.
    other = _report(client, bearer(mix["cpc_school_key"]), campaign_id=mix["cpl"]["id"])
    assert other["rows"] == [] and other["totals"]["impressions"] == 0 and other["totals"]["ctr"] is None


def test_filters_narrow_the_admin_report(client: FlaskClient, admin: dict[str, str], mix: dict[str, Any]) -> None:
    expected: Mix = mix["expected"]
    cpc, second = mix["cpc"], mix["second"]
    body = _report(client, admin, group_by="day,publisher", campaign_id=cpc["id"], publisher_id=second["id"])
    keep = lambda key: key[1] == cpc["id"] and key[3] == second["id"]  # noqa: E731
    assert _sorted(body["rows"]) == _sorted(expected.rows("day,publisher", keep))
    by_school = _report(client, admin, group_by="campaign", school_id=cpc["school_id"])
    assert [row["campaign_id"] for row in by_school["rows"]] == [cpc["id"]]
    one_day = _report(client, admin, group_by="day", to=DAY_1)
    assert [row["day"] for row in one_day["rows"]] == [DAY_1]


def test_the_csv_carries_the_same_rows(client: FlaskClient, admin: dict[str, str], mix: dict[str, Any]) -> None:
    for params, headers in (({"format": "csv"}, admin), ({}, {**admin, "Accept": "text/csv"})):
        response = client.get("/v1/reports", query_string={"from": DAY_1, "to": DAY_2, "group_by": "day,campaign",
                                                           **params}, headers=headers)  # fmt: skip
        assert response.status_code == 200 and response.mimetype == "text/csv"
        rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        as_json = _report(client, admin, group_by="day,campaign")["rows"]
        assert len(rows) == len(as_json)
        for row, expected in zip(rows, as_json, strict=True):
            assert set(row) == {"day", "campaign_id", *METRICS, "ctr", "lead_rate", "cpl_cents"}
            assert dict(row) == {k: "" if v is None else str(v) for k, v in expected.items()}


def test_events_and_leads_of_the_same_hour_share_each_level_s_row(app: Any, mix: dict[str, Any]) -> None:
    """Events are summed into their rows by the database, leads by Python: both must name the same
    hour and day, or a row would be split in two (reports would still add up; the rows would not)."""
    from sqlalchemy import select

    from adserver.extensions import db
    from adserver.services.reporting.rollups import LEVELS

    cpl, first = mix["cpl"], mix["first"]
    with app.app_context():
        for level in LEVELS:
            table = level.table
            where = [table.c.campaign_id == cpl["id"], table.c[level.bucket] <= NOON_PHOENIX]
            if "publisher_id" in level.keys:
                where.append(table.c.publisher_id == first["id"])
            rows = db.session.execute(select(table.c.impressions, table.c.leads).where(*where)).all()
            # Day 1, first publisher, the CPL ad: 2 impressions and 2 leads (by day and campaign alone,
            # the second publisher's human impression and 2 leads too).
            assert [tuple(row) for row in rows] == [(2, 2) if "publisher_id" in level.keys else (3, 4)], table.name
        db.session.rollback()


def test_no_traffic_gives_null_ratios_not_errors(client: FlaskClient, admin: dict[str, str]) -> None:
    body = _report(client, admin, group_by="campaign")
    assert body["rows"] == []
    assert body["totals"] == {**dict.fromkeys(METRICS, 0), "ctr": None, "lead_rate": None, "cpl_cents": None}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-11-30", "to": "2026-11-01"}, "from"),
        ({"from": "yesterday", "to": "2026-11-01"}, "from"),
        ({"from": "2026-11-01", "to": "2026-13-01"}, "to"),
        ({"from": "2025-01-01", "to": "2026-02-05"}, "to"),
        ({"from": "2026-11-01", "to": "2026-11-30", "group_by": "day,week"}, "group_by"),
        ({"from": "2026-11-01", "to": "2026-11-30", "group_by": "day,day"}, "group_by"),
        ({"to": "2026-11-30"}, "from"),
    ],
)
def test_a_bad_range_or_grouping_is_422_naming_the_field(
    client: FlaskClient, admin: dict[str, str], params: dict[str, str], field: str
) -> None:
    response = client.get("/v1/reports", query_string=params, headers=admin)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error" and field in error["fields"], error


def test_400_days_is_the_longest_range(client: FlaskClient, admin: dict[str, str]) -> None:
    response = client.get("/v1/reports", query_string={"from": "2025-01-01", "to": "2026-02-04"}, headers=admin)
    assert response.status_code == 200, response.get_json()


def test_a_publishable_key_cannot_read_reports(client: FlaskClient, make_publisher: Any) -> None:
    publisher = make_publisher()
    response = client.get("/v1/reports", query_string={"from": DAY_1, "to": DAY_2},
                          headers={"X-Publisher-Key": publisher["publishable_key"],
                                   "Origin": "https://careerguides.example"})  # fmt: skip
    assert response.status_code == 403


def test_the_report_command_prints_the_same_figures(app: Any, client: FlaskClient, admin: dict[str, str],
                                                    mix: dict[str, Any]) -> None:  # fmt: skip
    runner = app.test_cli_runner()
    args = ["report", "--from", DAY_1, "--to", DAY_2, "--group-by", "day,campaign"]
    as_csv = runner.invoke(args=[*args, "--format", "csv"])
    assert as_csv.exit_code == 0, as_csv.output
    api = client.get("/v1/reports", query_string={"from": DAY_1, "to": DAY_2, "group_by": "day,campaign",
                                                  "format": "csv"}, headers=admin)  # fmt: skip
    assert as_csv.output.splitlines() == api.get_data(as_text=True).splitlines()

    table = runner.invoke(args=args)
    assert table.exit_code == 0, table.output
    lines = table.output.strip().splitlines()
    assert lines[0].split()[:3] == ["day", "campaign_id", "impressions"]
    assert lines[-1].split()[:2] == ["total", "8"]  # the total row: 8 human impressions
    assert len(lines) == 2 + len(_report(client, admin, group_by="day,campaign")["rows"])

    bad = runner.invoke(args=["report", "--from", DAY_2, "--to", DAY_1])
    assert bad.exit_code == 2 and "from" in bad.output
