"""The dashboard page through the Flask test client: totals, rows, ranges, pausing, the CSV, and
markup that a strict Content-Security-Policy allows."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

from flask.testing import FlaskClient

from tests.conftest import ADMIN_KEY, bearer
from tests.dashboard.conftest import Traffic, sign_in

CONTRACT_TESTIDS = {
    "date-from", "date-to", "apply-range", "total-impressions", "total-clicks", "total-leads", "total-spend",
    "daily-chart", "campaign-row", "pause-toggle", "failed-delivery-row", "csv-download", "sign-out",
}  # fmt: skip


class Markup(HTMLParser):
    """What the page is made of: test ids, elements by test id, scripts, styles and forms."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.testids: dict[str, list[dict[str, str | None]]] = {}
        self.texts: dict[str, str] = {}
        self.scripts: list[dict[str, str | None]] = []
        self.inline_scripts: list[str] = []
        self.style_elements = 0
        self.style_attributes: list[str] = []
        self.forms: list[dict[str, Any]] = []
        self._text_of: str | None = None
        self._in_script: dict[str, str | None] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if "style" in attributes:
            self.style_attributes.append(tag)
        if any(name.startswith("on") for name in attributes):
            self.inline_scripts.append(f"<{tag}> event handler")
        testid = attributes.get("data-testid")
        if testid:
            self.testids.setdefault(testid, []).append(attributes)
            self._text_of = testid
        if tag == "style":
            self.style_elements += 1
        if tag == "script":
            self.scripts.append(attributes)
            self._in_script = attributes
        if tag == "form":
            self.forms.append({**attributes, "inputs": {}})
        if tag == "input" and self.forms:
            self.forms[-1]["inputs"][attributes.get("name")] = attributes.get("value")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = None

    def handle_data(self, data: str) -> None:
        if self._in_script is not None and data.strip() and self._in_script.get("type") != "application/json":
            self.inline_scripts.append(data.strip()[:40])
        if self._text_of is not None and data.strip():
            self.texts.setdefault(self._text_of, data.strip())
            self._text_of = None


def _page(client: FlaskClient, **range_: str) -> Markup:
    response = client.get("/dashboard", query_string=range_)
    assert response.status_code == 200
    return Markup(response.get_data(as_text=True))


def _api_totals(client: FlaskClient, key: str, start: str, end: str) -> dict[str, Any]:
    response = client.get("/v1/reports", query_string={"from": start, "to": end}, headers=bearer(key))
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json()["totals"])


def _today() -> datetime:
    return datetime.now(UTC)


def _shown_totals(markup: Markup) -> tuple[str, str, str, str]:
    return (markup.texts["total-impressions"], markup.texts["total-clicks"], markup.texts["total-leads"],
            markup.texts["total-spend"])  # fmt: skip


def test_the_page_carries_every_contract_hook_and_no_inline_script_or_style(
    client: FlaskClient, traffic: Traffic
) -> None:
    sign_in(client)
    markup = _page(client)
    assert set(markup.testids) >= CONTRACT_TESTIDS
    assert markup.inline_scripts == [] and markup.style_elements == 0 and markup.style_attributes == []
    assert all(script.get("src") or script.get("type") == "application/json" for script in markup.scripts)
    post_forms = [form for form in markup.forms if form.get("method") == "post"]
    assert len(post_forms) >= 4  # sign-out, range, and a pause or resume per active or paused campaign
    assert all(form["inputs"].get("csrf_token") for form in post_forms)

    client.post("/dashboard/sign-out", data={"csrf_token": post_forms[0]["inputs"]["csrf_token"]})
    sign_in_form = Markup(client.get("/dashboard").get_data(as_text=True))
    assert {"login-key", "login-submit"} <= set(sign_in_form.testids)
    assert sign_in_form.inline_scripts == [] and sign_in_form.style_attributes == []
    assert all(form["inputs"].get("csrf_token") for form in sign_in_form.forms)


def test_totals_are_the_reports_totals_in_whole_numbers_and_dollars(client: FlaskClient, traffic: Traffic) -> None:
    sign_in(client)
    today = _today().date()
    default = _page(client)
    api = _api_totals(client, ADMIN_KEY, (today - timedelta(days=29)).isoformat(), today.isoformat())
    # Today: 6 impressions, 3 counted clicks (2 on the CPC ad), 4 leads (1 CPL delivered, 1 pulled);
    # 10 days ago: 2,500 impressions, 40 clicks and $120.00 of CPC spend.
    assert (api["impressions"], api["clicks"], api["leads"], api["spend_cents"]) == (2_506, 43, 4, 12_000 + 600 + 4500)
    assert _shown_totals(default) == ("2,506", "43", "4", "$171.00")

    wide = _page(client, **{"from": (today - timedelta(days=60)).isoformat(), "to": today.isoformat()})
    api = _api_totals(client, ADMIN_KEY, (today - timedelta(days=60)).isoformat(), today.isoformat())
    assert api["impressions"] == 1_237_073 and api["spend_cents"] == 1_367_100
    assert _shown_totals(wide) == ("1,237,073", "8,953", "325", "$13,671.00")


def test_every_campaign_in_the_scope_has_a_row_even_without_traffic(client: FlaskClient, traffic: Traffic) -> None:
    sign_in(client)
    rows = _page(client).testids["campaign-row"]
    assert {row["data-campaign-id"] for row in rows} == traffic.campaign_ids
    # A range with no traffic at all still lists them.
    quiet = _page(client, **{"from": "2020-01-01", "to": "2020-01-31"})
    assert {row["data-campaign-id"] for row in quiet.testids["campaign-row"]} == traffic.campaign_ids
    assert _shown_totals(quiet) == ("0", "0", "0", "$0.00")


def test_a_school_sees_only_its_own_campaigns_and_figures(client: FlaskClient, traffic: Traffic) -> None:
    sign_in(client, traffic.north_key)
    markup = _page(client)
    assert {row["data-campaign-id"] for row in markup.testids["campaign-row"]} == {
        traffic.cpl["id"],
        traffic.idle["id"],
    }
    today = _today().date()
    api = _api_totals(client, traffic.north_key, (today - timedelta(days=29)).isoformat(), today.isoformat())
    assert _shown_totals(markup) == (f"{api['impressions']:,}", f"{api['clicks']:,}", f"{api['leads']:,}", "$45.00")
    assert {row["data-lead-id"] for row in markup.testids["failed-delivery-row"]} == set(traffic.failed_lead_ids)

    sign_in(client, traffic.hollis_key)
    markup = _page(client)
    assert [row["data-campaign-id"] for row in markup.testids["campaign-row"]] == [traffic.cpc["id"]]
    assert "failed-delivery-row" not in markup.testids


def test_failed_and_rejected_deliveries_show_their_reasons(client: FlaskClient, traffic: Traffic) -> None:
    sign_in(client)
    html = client.get("/dashboard").get_data(as_text=True)
    rows = Markup(html).testids["failed-delivery-row"]
    assert {row["data-lead-id"] for row in rows} == set(traffic.failed_lead_ids) and len(rows) == 2
    assert "HTTP 409: already in our CRM" in html and "HTTP 503: CRM down" in html


def test_a_school_cannot_pause_another_schools_campaign_by_forging_the_form(
    client: FlaskClient, traffic: Traffic
) -> None:
    token = sign_in(client, traffic.hollis_key)
    forged = client.post(
        f"/dashboard/campaigns/{traffic.cpl['id']}/status", data={"status": "paused", "csrf_token": token}
    )
    assert forged.status_code == 404
    assert client.get(f"/v1/campaigns/{traffic.cpl['id']}", headers=bearer(ADMIN_KEY)).get_json()["status"] == "active"
    # Its own campaign it can pause and resume.
    for status in ("paused", "active"):
        response = client.post(f"/dashboard/campaigns/{traffic.cpc['id']}/status",
                               data={"status": status, "csrf_token": token})  # fmt: skip
        assert response.status_code == 303
        campaign = client.get(f"/v1/campaigns/{traffic.cpc['id']}", headers=bearer(ADMIN_KEY)).get_json()
        assert campaign["status"] == status


def test_pausing_keeps_the_range_and_says_what_happened(client: FlaskClient, traffic: Traffic) -> None:
    token = sign_in(client)
    form = {"status": "paused", "csrf_token": token, "from": "2026-11-01", "to": "2026-11-30"}
    response = client.post(f"/dashboard/campaigns/{traffic.cpl['id']}/status", data=form)
    assert response.status_code == 303 and response.headers["Location"].endswith(
        "/dashboard?from=2026-11-01&to=2026-11-30"
    )
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Fall health admin is paused." in html
    toggles = {row["data-campaign-id"]: row for row in Markup(html).testids["campaign-row"]}
    assert traffic.cpl["id"] in toggles
    assert 'value="2026-11-01" data-testid="date-from"' in html


def test_the_range_form_lands_on_a_page_whose_address_holds_the_range(client: FlaskClient, traffic: Traffic) -> None:
    token = sign_in(client)
    response = client.post("/dashboard/range", data={"from": "2026-10-01", "to": "2026-10-31", "csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"].endswith(
        "/dashboard?from=2026-10-01&to=2026-10-31"
    )


def test_a_bad_range_is_explained_and_the_last_30_days_shown(client: FlaskClient, traffic: Traffic) -> None:
    sign_in(client)
    today = _today().date()
    for range_, words in (({"from": "2026-11-30", "to": "2026-11-01"}, "from must not be after `to`"),
                          ({"from": "2020-01-01", "to": "2026-11-01"}, "more than 400 days"),
                          ({"from": "yesterday", "to": "2026-11-01"}, "Dates are written YYYY-MM-DD")):  # fmt: skip
        response = client.get("/dashboard", query_string=range_)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert words in html
        assert f'value="{(today - timedelta(days=29)).isoformat()}" data-testid="date-from"' in html


def test_the_csv_holds_the_tables_rows(client: FlaskClient, traffic: Traffic) -> None:
    sign_in(client)
    today = _today().date()
    markup = _page(client)
    (link,) = markup.testids["csv-download"]
    response = client.get(str(link["href"]))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert f'filename="campaigns-{today - timedelta(days=29)}-{today}.csv"' in response.headers["Content-Disposition"]
    rows = {row["campaign_id"]: row for row in csv.DictReader(io.StringIO(response.get_data(as_text=True)))}
    assert set(rows) == {row["data-campaign-id"] for row in markup.testids["campaign-row"]}
    cpc = rows[traffic.cpc["id"]]
    assert (cpc["campaign"], cpc["school"], cpc["status"]) == ("Evening business", "Hollis Institute", "active")
    assert (cpc["impressions"], cpc["clicks"], cpc["leads"], cpc["spend_cents"]) == ("2503", "42", "1", "12600")
    idle = rows[traffic.idle["id"]]
    assert (idle["impressions"], idle["ctr"], idle["cpl_cents"], idle["delivery_success"]) == ("0", "", "", "")
    cpl = rows[traffic.cpl["id"]]
    assert (cpl["delivered"], cpl["delivery_success"]) == ("1", str(round(1 / 3, 6)))


def test_signed_out_browsers_are_sent_to_the_sign_in_form(client: FlaskClient, traffic: Traffic) -> None:
    html = client.get("/dashboard").get_data(as_text=True)
    assert 'data-testid="login-key"' in html and "campaign-row" not in html
    csv_answer = client.get("/dashboard/campaigns.csv")
    assert csv_answer.status_code == 303 and csv_answer.headers["Location"].endswith("/dashboard")
    assert client.get("/dashboard").headers["Cache-Control"] == "no-store"
