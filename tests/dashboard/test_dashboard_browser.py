"""The dashboard in headless Chromium against a real gunicorn: signing in, totals that equal the
API's, the chart, pausing and resuming with /v1/ads following, the CSV, and phone and desktop
screenshots (saved in test-artifacts/dashboard/)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from flask.testing import FlaskClient

from tests.conftest import ADMIN_KEY, bearer
from tests.dashboard.conftest import CHROME_UA, DashboardPage, Traffic
from tests.leads.conftest import wait_for

# The series' colours in static/dashboard.js: impressions, clicks, leads.
SERIES_COLOURS = {"impressions": (0x25, 0x63, 0xEB), "clicks": (0xD9, 0x77, 0x06), "leads": (0x05, 0x96, 0x69)}


def _api_totals(client: FlaskClient, key: str, start: str, end: str) -> dict[str, int]:
    response = client.get("/v1/reports", query_string={"from": start, "to": end}, headers=bearer(key))
    assert response.status_code == 200, response.get_json()
    totals = response.get_json()["totals"]
    return {"impressions": totals["impressions"], "clicks": totals["clicks"], "leads": totals["leads"],
            "spend": totals["spend_cents"]}  # fmt: skip


def _last_30_days() -> tuple[str, str]:
    today = datetime.now(UTC).date()
    return (today - timedelta(days=29)).isoformat(), today.isoformat()


def test_a_bad_key_is_refused_with_a_message(dashboard: DashboardPage, traffic: Traffic) -> None:
    dashboard.sign_in("sk_this_is_not_a_key")
    assert "unknown or revoked" in dashboard.by_testid("login-error").inner_text()
    dashboard.by_testid("login-key").fill(traffic.publisher["publishable_key"])
    dashboard.by_testid("login-submit").click()
    assert "publishable key" in dashboard.by_testid("login-error").inner_text()
    assert dashboard.by_testid("sign-out").count() == 0
    assert dashboard.csp_violations() == []


def test_an_admin_sees_every_campaign_and_the_apis_totals_for_any_range(
    dashboard: DashboardPage, client: FlaskClient, traffic: Traffic
) -> None:
    dashboard.sign_in(ADMIN_KEY)
    assert set(dashboard.campaign_rows()) == traffic.campaign_ids
    start, end = _last_30_days()
    assert dashboard.by_testid("date-from").input_value() == start
    assert dashboard.by_testid("date-to").input_value() == end
    assert dashboard.totals() == _api_totals(client, ADMIN_KEY, start, end)

    wider = (datetime.now(UTC).date() - timedelta(days=60)).isoformat()
    dashboard.by_testid("date-from").fill(wider)
    dashboard.by_testid("apply-range").click()
    dashboard.page.wait_for_url(f"**/dashboard?from={wider}&to={end}")
    shown = dashboard.totals()
    assert shown == _api_totals(client, ADMIN_KEY, wider, end)
    assert shown["impressions"] > 1_000_000  # the figures of 45 days ago are in this range only
    assert dashboard.by_testid("total-impressions").inner_text() == f"{shown['impressions']:,}"
    assert dashboard.csp_violations() == []


def test_a_school_sees_only_its_campaigns(dashboard: DashboardPage, client: FlaskClient, traffic: Traffic) -> None:
    dashboard.sign_in(traffic.north_key)
    assert set(dashboard.campaign_rows()) == {traffic.cpl["id"], traffic.idle["id"]}
    assert dashboard.totals() == _api_totals(client, traffic.north_key, *_last_30_days())
    assert dashboard.by_testid("failed-delivery-row").count() == len(traffic.failed_lead_ids) == 2
    dashboard.by_testid("sign-out").click()
    dashboard.page.wait_for_load_state()
    assert dashboard.by_testid("login-key").is_visible()


def test_the_daily_chart_is_drawn(dashboard: DashboardPage, traffic: Traffic) -> None:
    dashboard.sign_in(ADMIN_KEY)
    canvas = dashboard.by_testid("daily-chart").locator("canvas")
    canvas.wait_for()
    # Pixels of each series' colour on the canvas: its line was drawn.
    drawn = dashboard.page.evaluate(
        """([canvas, colours]) => {
             const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
             const found = Object.fromEntries(Object.keys(colours).map((name) => [name, 0]));
             for (let i = 0; i < data.length; i += 4) {
               if (data[i + 3] < 200) continue;
               for (const [name, [r, g, b]] of Object.entries(colours)) {
                 const distance = Math.abs(data[i] - r) + Math.abs(data[i + 1] - g) + Math.abs(data[i + 2] - b);
                 if (distance < 40) found[name] += 1;
               }
             }
             return found;
           }""",
        [canvas.element_handle(), SERIES_COLOURS],
    )
    assert all(count > 20 for count in drawn.values()), drawn
    assert dashboard.csp_violations() == []


def test_pausing_and_resuming_a_campaign_is_followed_by_the_ads(
    dashboard: DashboardPage, dashboard_url: str, traffic: Traffic
) -> None:
    def served() -> set[str]:
        response = requests.get(f"{dashboard_url}/v1/ads", params={"postal_code": "85004", "user_agent": CHROME_UA},
                                headers=bearer(traffic.publisher["secret_key"]), timeout=10)  # fmt: skip
        assert response.status_code == 200, response.text
        return {ad["campaign_id"] for ad in response.json()["ads"]}

    wait_for(lambda: traffic.cpc["id"] in served(), what="gunicorn to serve the campaign")
    dashboard.sign_in(ADMIN_KEY)
    row = dashboard.page.locator(f"[data-testid=campaign-row][data-campaign-id='{traffic.cpc['id']}']")
    assert row.get_by_test_id("pause-toggle").inner_text() == "Pause"
    row.get_by_test_id("pause-toggle").click()
    dashboard.page.wait_for_load_state()
    assert dashboard.campaign_rows()[traffic.cpc["id"]]["status"] == "paused"
    wait_for(lambda: traffic.cpc["id"] not in served(), what="the paused campaign to leave /v1/ads")

    assert row.get_by_test_id("pause-toggle").inner_text() == "Resume"
    row.get_by_test_id("pause-toggle").click()
    dashboard.page.wait_for_load_state()
    assert dashboard.campaign_rows()[traffic.cpc["id"]]["status"] == "active"
    wait_for(lambda: traffic.cpc["id"] in served(), what="the resumed campaign to come back to /v1/ads")
    assert dashboard.csp_violations() == []


def test_the_csv_downloads_with_the_tables_rows(dashboard: DashboardPage, traffic: Traffic, tmp_path: Path) -> None:
    dashboard.sign_in(ADMIN_KEY)
    table = dashboard.campaign_rows()
    with dashboard.page.expect_download() as download:
        dashboard.by_testid("csv-download").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    start, end = _last_30_days()
    assert saved.name == f"campaigns-{start}-{end}.csv"
    with saved.open(newline="") as file:
        rows = {row["campaign_id"]: row for row in csv.DictReader(file)}
    assert set(rows) == set(table)
    for campaign_id, cells in table.items():
        row = rows[campaign_id]
        for column in ("impressions", "clicks", "leads", "delivered", "returned"):
            assert cells[column].replace(",", "") == row[column], (campaign_id, column)
        assert cells["spend"] == f"${int(row['spend_cents']) / 100:,.2f}"
        assert cells["status"] == row["status"]


def test_screenshots_at_desktop_and_phone_width(dashboard: DashboardPage, traffic: Traffic) -> None:
    dashboard.sign_in(ADMIN_KEY)
    dashboard.by_testid("daily-chart").locator("canvas").wait_for()
    desktop = dashboard.screenshot("desktop-1280")
    dashboard.page.set_viewport_size({"width": 360, "height": 780})
    # The chart follows the narrower page, and nothing makes the page wider than the phone.
    dashboard.page.wait_for_function(
        "() => document.querySelector('[data-testid=daily-chart] canvas').getBoundingClientRect().width <= 360"
    )
    assert dashboard.page.evaluate("document.documentElement.scrollWidth") <= 360
    assert dashboard.by_testid("total-spend").is_visible() and dashboard.by_testid("sign-out").is_visible()
    phone = dashboard.screenshot("phone-360")
    dashboard.by_testid("sign-out").click()
    dashboard.page.wait_for_load_state()
    sign_in_page = dashboard.screenshot("sign-in-360")
    for path in (desktop, phone, sign_in_page):
        assert path.stat().st_size > 10_000, path
    assert dashboard.csp_violations() == []
