"""The widget in a real browser: the demo article served by gunicorn, and a publisher page on another
origin with hostile CSS and a strict Content-Security-Policy. Playwright's locators reach into the
widget's open shadow root."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.leads.conftest import SchoolServer, deliver_until_settled, lead_status, wait_for
from tests.widget.conftest import Server, Site, Visit, click_events, hostile_page

pytest.importorskip("playwright", reason="browser tests need the playwright package (requirements-dev.txt)")
from playwright.sync_api import expect

TAMPA = "33620"
PHOENIX = "85004"
BAD_FORMAT = "Please enter valid US or Canada Zip."

# Finds the focused element inside shadow roots: document.activeElement stops at the widget's host.
DEEP_FOCUS = """() => {
  let el = document.activeElement;
  while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
  if (!el) return null;
  return {testid: el.dataset.testid || null, name: el.getAttribute("name"), outline: getComputedStyle(el).outlineStyle};
}"""


def lead_count(app: Flask) -> int:
    from adserver.extensions import db
    from adserver.models import Lead

    with app.app_context():
        count = db.session.scalar(select(func.count(Lead.id)))
        db.session.remove()
    return int(count or 0)


def search(page: Any, postal_code: str) -> None:
    page.get_by_test_id("postal-input").fill(postal_code)
    page.get_by_test_id("search-button").click()


def card_ids(page: Any) -> list[str]:
    cards = page.get_by_test_id("school-card")
    expect(cards.first).to_be_visible()
    return list(cards.evaluate_all("cards => cards.map(card => card.dataset.campaignId)"))


def fill_lead_form(card: Any, email: str, **choices: Any) -> Any:
    """Open the card's request-info form and fill it as a visitor would; returns the form."""
    form = card.get_by_test_id("lead-form")
    if form.count() == 0:
        card.get_by_test_id("request-info").click()
    expect(form).to_be_visible()
    form.locator("[name=first_name]").fill("Ada")
    form.locator("[name=last_name]").fill("Lovelace")
    form.locator("[name=email]").fill(email)
    form.locator("[name=phone]").fill(choices.pop("phone", "(602) 555-0143"))
    form.locator("[name=education_level]").select_option(choices.pop("education_level", "bachelor"))
    form.locator("[name=graduation_year]").fill("2010")
    for name, value in choices.items():
        control = form.locator(f"[name={name}]")
        if isinstance(value, bool):
            control.set_checked(value)
        else:
            control.fill(value)
    form.get_by_test_id("consent-checkbox").check()
    return form


def no_policy_errors(visit: Visit) -> None:
    """Nothing the page runs was blocked by its Content-Security-Policy, and no script failed."""
    assert [e for e in visit.console_errors if "Content Security Policy" in e or "Error" in e] == []


# ---- the demo article --------------------------------------------------------------------


@pytest.fixture
def demo(app: Flask, server: Server) -> str:
    """The demo catalog and publisher, seeded as `make run` does; returns the article's URL."""
    from adserver.demo import seed_demo_catalog
    from adserver.extensions import db
    from adserver.models import Campaign

    with app.app_context():
        list(seed_demo_catalog())
        campaign_ids = set(db.session.scalars(select(Campaign.id)))
        db.session.remove()
    server.wait_for_campaigns(campaign_ids)
    return f"{server.url}/demo/medical-office-manager"


def test_the_demo_article_shows_ranked_schools_for_a_good_zip(demo: str, server: Server, visit: Any) -> None:
    v = visit(demo)
    expect(v.page.get_by_role("heading", name="How to Become a Medical Office Manager")).to_be_visible()
    search(v.page, TAMPA)
    expect(v.page.get_by_test_id("results-count")).to_have_text("3 Program(s) Found")
    expected = server.serving_order(TAMPA, interest="medical-office-management")
    assert len(expected) == 3
    assert card_ids(v.page) == expected
    v.screenshots("results")
    no_policy_errors(v)


def test_the_demo_article_says_when_a_zip_is_wrong(demo: str, visit: Any) -> None:
    v = visit(demo)
    search(v.page, "1234")
    expect(v.page.get_by_test_id("postal-error")).to_have_text(BAD_FORMAT)
    expect(v.page.get_by_test_id("school-card")).to_have_count(0)
    # Well formed but no such ZIP: the server's own words.
    search(v.page, "00000")
    expect(v.page.get_by_test_id("postal-error")).to_have_text("Please enter a valid US or Canada ZIP/postal code.")
    search(v.page, TAMPA)
    expect(v.page.get_by_test_id("postal-error")).to_have_count(0)
    expect(v.page.get_by_test_id("school-card")).to_have_count(3)


def test_show_more_expands_a_cards_bullets(demo: str, visit: Any) -> None:
    v = visit(f"{demo}?postal_code={TAMPA}")
    card = v.page.get_by_test_id("school-card").first
    bullets = card.locator(".bullets li")
    expect(bullets).to_have_count(3)
    expect(bullets.nth(2)).to_be_hidden()
    card.get_by_test_id("show-more").click()
    expect(bullets.nth(2)).to_be_visible()
    expect(card.get_by_test_id("show-more")).to_have_text("Show less [-]")
    expect(card.get_by_test_id("show-more")).to_have_attribute("aria-expanded", "true")
    card.get_by_test_id("show-more").click()
    expect(bullets.nth(2)).to_be_hidden()


def test_a_request_from_the_demo_article_is_accepted_and_stays_on_the_server(
    app: Flask, client: FlaskClient, admin: dict[str, str], demo: str, visit: Any
) -> None:
    v = visit(f"{demo}?postal_code={TAMPA}")
    card = v.page.get_by_test_id("school-card").first
    form = fill_lead_form(card, "ada.demo@example.com", birth_year="1990")
    form.get_by_test_id("lead-submit").click()
    confirmation = card.get_by_test_id("lead-confirmation")
    expect(confirmation).to_contain_text("Thank you, Ada!")
    lead = lead_status(client, admin, confirmation.get_attribute("data-lead-id"))
    assert lead["campaign_id"] == card.get_attribute("data-campaign-id")
    assert lead["consent"]["page_url"].endswith("/demo/medical-office-manager?postal_code=33620")
    # The demo schools pull their leads: no delivery is attempted to anywhere.
    assert lead["status"] == "accepted" and lead["attempts"] == []
    no_policy_errors(v)


def test_keyboard_alone_reaches_and_submits_the_form(demo: str, visit: Any) -> None:
    v = visit(demo)
    page = v.page

    def tab_to(testid: str | None = None, name: str | None = None) -> dict[str, Any]:
        for _ in range(40):
            page.keyboard.press("Tab")
            focused = page.evaluate(DEEP_FOCUS)
            if focused and ((testid and focused["testid"] == testid) or (name and focused["name"] == name)):
                return dict(focused)
        raise AssertionError(f"Tab never reached {testid or name}")

    focused = tab_to("postal-input")
    assert focused["outline"] != "none", "keyboard focus must be visible"
    page.keyboard.type(TAMPA)
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("school-card")).to_have_count(3)
    tab_to("request-info")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("lead-form")).to_be_visible()
    # Opening the form moves focus into it.
    assert page.evaluate(DEEP_FOCUS)["name"] == "first_name"
    page.keyboard.type("Grace")
    for name, text in (("last_name", "Hopper"), ("email", "grace.keys@example.com"), ("phone", "6025550199")):
        tab_to(name=name)
        page.keyboard.type(text)
    tab_to(name="education_level")
    page.keyboard.type("Bachelor")
    tab_to(name="graduation_year")
    page.keyboard.type("2010")
    tab_to(name="birth_year")
    page.keyboard.type("1990")
    tab_to("consent-checkbox")
    page.keyboard.press("Space")
    tab_to("lead-submit")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("lead-confirmation")).to_contain_text("Thank you, Grace!")


def test_the_demo_article_without_the_demo_catalog_says_how_to_add_it(server: Server, visit: Any) -> None:
    v = visit(f"{server.url}/demo/medical-office-manager")
    expect(v.page.get_by_text("seed-demo")).to_be_visible()


def test_the_api_reference_renders_under_its_strict_policy(server: Server, visit: Any) -> None:
    v = visit(f"{server.url}/docs")
    expect(v.page.get_by_text("/v1/ads/explain")).to_be_visible()
    v.page.get_by_text("Ads matched to a visitor").click()
    expect(v.page.get_by_text("visitor_id", exact=True).first).to_be_visible()
    no_policy_errors(v)
    assert [e for e in v.console_errors if "Failed to load" in e] == []


# ---- a publisher page on another origin, with hostile CSS and a strict CSP ---------------


@pytest.fixture
def publisher(make_publisher: Any) -> dict[str, Any]:
    """A publisher whose domain is the local host: the second origin is one of its pages."""
    return dict(make_publisher(name="Local Careers", domains=["127.0.0.1"]))


@pytest.fixture
def catalog(make_school: Any, make_campaign: Any, school_server: SchoolServer, server: Server) -> list[dict[str, Any]]:
    """Three schools near Phoenix delivering to a local school endpoint, bidding 30, 90 and 60 dollars a lead."""
    delivery = {"method": "http_post", "url": school_server.url, "format": "json", "field_map": {},
                "max_attempts": 3, "timeout_s": 2}  # fmt: skip
    campaigns = [
        make_campaign(make_school(name=name, delivery=delivery), pricing={"model": "cpl", "bid_cents": bid})
        for name, bid in (("Desert State College", 3000), ("Canyon University", 9000), ("Mesa Institute", 6000))
    ]
    server.wait_for_campaigns({c["id"] for c in campaigns})
    return campaigns


def test_on_a_hostile_page_the_box_keeps_its_looks_and_ranks_by_value(
    site: Site, server: Server, publisher: dict[str, Any], catalog: list[dict[str, Any]], visit: Any
) -> None:
    v = visit(hostile_page(site, server, publisher["publishable_key"], interest="healthcare-administration"))
    page = v.page
    page_text = "p => { const s = getComputedStyle(p); return [s.color, s.display, s.fontSize, s.fontFamily].join() }"
    text_before = page.locator("#page-text").evaluate(page_text)
    search(page, PHOENIX)
    by_bid = [c["id"] for c in sorted(catalog, key=lambda c: -c["pricing"]["bid_cents"])]
    assert card_ids(page) == by_bid
    expect(page.get_by_test_id("results-count")).to_have_text("3 Program(s) Found")
    card = page.get_by_test_id("school-card").first
    looks = (
        "e => { const s = getComputedStyle(e); "
        "return [s.display, s.color, s.fontSize, s.textTransform, s.letterSpacing, s.borderTopStyle] }"
    )
    # The page's rules reach neither the cards nor, through inheritance, their text.
    assert card.evaluate(looks)[:5] == ["list-item", "rgb(31, 35, 40)", "15px", "none", "normal"]
    # Nor the box's own container element, which the page's CSS does match.
    assert page.locator("#school-box > div").evaluate(looks)[::5] == ["block", "none"]
    box = page.locator("#school-box > div").bounding_box()
    assert box is not None and box["width"] > 600
    # The widget touched none of the page's own styles.
    assert page.locator("#page-text").evaluate(page_text) == text_before
    assert page.evaluate("document.adoptedStyleSheets.length") == 0
    v.screenshots("results")
    no_policy_errors(v)


def test_a_request_creates_a_lead_that_the_school_endpoint_receives(
    app: Flask, client: FlaskClient, admin: dict[str, str], site: Site, server: Server, publisher: dict[str, Any],
    catalog: list[dict[str, Any]], school_server: SchoolServer, visit: Any,
) -> None:  # fmt: skip
    v = visit(hostile_page(site, server, publisher["publishable_key"], postal_code=PHOENIX))
    card = v.page.get_by_test_id("school-card").first
    form = fill_lead_form(card, "ada.received@example.com", birth_year="1990")
    v.screenshots("lead-form")
    form.get_by_test_id("lead-submit").click()
    confirmation = card.get_by_test_id("lead-confirmation")
    expect(confirmation).to_contain_text("Your request was sent to Canyon University")
    lead_id = confirmation.get_attribute("data-lead-id")
    assert deliver_until_settled(app, client, admin, lead_id)["status"] == "delivered"
    received = [r for r in school_server.received if b"ada.received@example.com" in r.body]
    assert len(received) == 1


def test_the_form_asks_exactly_what_each_campaign_checks(
    make_school: Any, make_campaign: Any, site: Site, server: Server, publisher: dict[str, Any], visit: Any
) -> None:
    programs = [{"name": f"BS Health Care Administration {n}", "interest": "healthcare-administration",
                 "degree_level": "bachelor", "modality": "online"} for n in (1, 2)]  # fmt: skip
    plain = make_campaign(make_school(name="Plain College"), eligibility={})
    nursing = make_campaign(make_school(name="Nursing College"),
                            eligibility={"min_age": 21, "requires_rn_license": True})  # fmt: skip
    military = make_campaign(make_school(name="Service College", programs=programs),
                             eligibility={"military_only": True})  # fmt: skip
    server.wait_for_campaigns({plain["id"], nursing["id"], military["id"]})
    v = visit(hostile_page(site, server, publisher["publishable_key"], postal_code=PHOENIX))
    always = {"first_name", "last_name", "email", "phone", "postal_code", "education_level", "graduation_year",
              "consent"}  # fmt: skip
    expected = {plain["id"]: always, nursing["id"]: always | {"birth_year", "rn_license"},
                military["id"]: always | {"military", "program_id"}}  # fmt: skip
    for campaign_id, names in expected.items():
        card = v.page.locator(f"[data-testid=school-card][data-campaign-id='{campaign_id}']")
        card.get_by_test_id("request-info").click()
        form = card.get_by_test_id("lead-form")
        assert set(form.locator("[name]").evaluate_all("els => els.map(e => e.name)")) == names
        consent = form.get_by_test_id("consent-checkbox")
        expect(consent).not_to_be_checked()
        expect(form.get_by_text("By submitting")).to_be_visible()
    program_select = v.page.get_by_test_id("program-select")
    expect(program_select).to_have_count(1)
    assert program_select.locator("option").count() == 3  # "Choose a program" and the two


def test_an_ineligible_profile_is_told_why(
    app: Flask, make_school: Any, make_campaign: Any, site: Site, server: Server, publisher: dict[str, Any],
    visit: Any,
) -> None:  # fmt: skip
    nursing = make_campaign(make_school(name="Nursing College"), eligibility={"requires_rn_license": True})
    server.wait_for_campaigns({nursing["id"]})
    v = visit(hostile_page(site, server, publisher["publishable_key"], postal_code=PHOENIX))
    card = v.page.get_by_test_id("school-card").first
    form = fill_lead_form(card, "ada.no.rn@example.com", rn_license=False)
    form.get_by_test_id("lead-submit").click()
    expect(form.get_by_test_id("lead-error")).to_have_text(
        "This program is for registered nurses: Nursing College asks for an active RN license."
    )
    assert lead_count(app) == 0


def test_a_click_opens_the_landing_page_in_a_new_window_and_is_counted_once(
    app: Flask, client: FlaskClient, admin: dict[str, str], make_school: Any, make_campaign: Any, site: Site,
    server: Server, publisher: dict[str, Any], visit: Any,
) -> None:  # fmt: skip
    landing = site.add("/programs/health-care-administration", "<title>Desert State College</title><h1>Apply</h1>")
    campaign = make_campaign(make_school(name="Desert State College"), with_ad=False)
    ad = client.post(f"/v1/campaigns/{campaign['id']}/ads", headers=admin, json={
        "headline": "Health care administration, online", "bullets": ["Start any month"], "tags": [],
        "landing_url": landing})  # fmt: skip
    assert ad.status_code == 201
    server.wait_for_campaigns({campaign["id"]})
    v = visit(hostile_page(site, server, publisher["publishable_key"], postal_code=PHOENIX))
    card = v.page.get_by_test_id("school-card").first
    link = card.get_by_role("link", name="Visit school")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener")
    for _ in range(2):
        with v.context.expect_page() as opened:
            link.click()
        window = opened.value
        window.wait_for_load_state()
        assert window.url.startswith(landing + "?") and "utm_medium=referral" in window.url
        assert window.title() == "Desert State College"
        assert window.evaluate("window.opener") is None  # rel="noopener"
        window.close()
    assert v.page.url.endswith("/article")  # the publisher's page stays where it was
    events = wait_for(lambda: click_events(app) if len(click_events(app)) == 2 else None, what="two clicks")
    assert [e["counted"] for e in events] == [True, False]
    assert {e["impression_id"] for e in events} == {events[0]["impression_id"]}
    assert events[0]["campaign_id"] == campaign["id"]


def test_a_double_click_on_submit_makes_one_lead(
    app: Flask, site: Site, server: Server, publisher: dict[str, Any], catalog: list[dict[str, Any]], visit: Any
) -> None:
    v = visit(hostile_page(site, server, publisher["publishable_key"], postal_code=PHOENIX))
    posts: list[dict[str, str]] = []
    v.page.on("request", lambda r: posts.append(r.headers) if r.method == "POST" and "/v1/leads" in r.url else None)
    card = v.page.get_by_test_id("school-card").first
    form = fill_lead_form(card, "ada.twice@example.com", birth_year="1990")
    form.get_by_test_id("lead-submit").dblclick()
    expect(card.get_by_test_id("lead-confirmation")).to_be_visible()
    expect(card.get_by_test_id("lead-error")).to_have_count(0)
    assert lead_count(app) == 1
    # However many requests the clicks made, they were one submission: one Idempotency-Key.
    keys = {headers.get("idempotency-key") for headers in posts}
    assert len(keys) == 1 and None not in keys


def test_field_errors_and_a_duplicate_are_shown_in_plain_words(
    app: Flask, site: Site, server: Server, publisher: dict[str, Any], catalog: list[dict[str, Any]], visit: Any
) -> None:
    v = visit(hostile_page(site, server, publisher["publishable_key"], postal_code=PHOENIX))
    card = v.page.get_by_test_id("school-card").first
    card.get_by_test_id("request-info").click()
    form = card.get_by_test_id("lead-form")
    form.get_by_test_id("lead-submit").click()  # empty: checked in the page, nothing sent
    for name in ("first_name", "email", "phone", "education_level", "consent"):
        expect(form.locator(f"[data-testid=field-error][data-field={name}]")).to_be_visible()
    expect(form.locator("[name=first_name]")).to_be_focused()
    # A well-formed number that is not a North American one: the API's field error, beside the field.
    form = fill_lead_form(card, "ada.first@example.com", phone="(111) 111-1111", birth_year="1990")
    form.get_by_test_id("lead-submit").click()
    expect(form.locator("[data-testid=field-error][data-field=phone]")).to_contain_text("phone number")
    expect(form.locator("[data-testid=field-error][data-field=email]")).to_have_count(0)
    form.locator("[name=phone]").fill("(602) 555-0101")
    form.get_by_test_id("lead-submit").click()
    expect(card.get_by_test_id("lead-confirmation")).to_be_visible()
    # The same person asking the same school again.
    search(v.page, PHOENIX)
    again = v.page.get_by_test_id("school-card").first
    form = fill_lead_form(again, "ada.first@example.com", phone="(602) 555-0102", birth_year="1990")
    form.get_by_test_id("lead-submit").click()
    expect(form.get_by_test_id("lead-error")).to_have_text(
        "You already asked Canyon University for information in the last 30 days; they have your details."
    )
    assert lead_count(app) == 1


def test_a_page_outside_the_publishers_domains_is_refused_and_says_so(
    make_publisher: Any, site: Site, server: Server, catalog: list[dict[str, Any]], visit: Any
) -> None:
    elsewhere = make_publisher(name="Career Guides", domains=["careerguides.example"])
    v = visit(hostile_page(site, server, elsewhere["publishable_key"], postal_code=PHOENIX))
    expect(v.page.get_by_test_id("widget-error")).to_contain_text("not one of the publisher's allowed domains")
    expect(v.page.get_by_test_id("school-card")).to_have_count(0)
    expect(v.page.get_by_test_id("widget-error").get_by_role("button")).to_have_count(0)


def test_a_network_failure_says_so_and_offers_a_retry(
    site: Site, server: Server, publisher: dict[str, Any], catalog: list[dict[str, Any]], visit: Any
) -> None:
    v = visit(hostile_page(site, server, publisher["publishable_key"]))
    v.page.route("**/v1/ads?*", lambda route: route.abort("internetdisconnected"))
    search(v.page, PHOENIX)
    error = v.page.get_by_test_id("widget-error")
    expect(error).to_contain_text("could not reach the school listings")
    v.page.unroute("**/v1/ads?*")
    error.get_by_role("button", name="Try again").click()
    expect(v.page.get_by_test_id("school-card")).to_have_count(3)
    expect(v.page.get_by_test_id("widget-error")).to_have_count(0)


def test_no_match_says_what_to_change(
    site: Site, server: Server, publisher: dict[str, Any], catalog: list[dict[str, Any]], visit: Any
) -> None:
    v = visit(hostile_page(site, server, publisher["publishable_key"]))
    search(v.page, "K1A 0B1")  # Ottawa: the campaigns serve the US only
    expect(v.page.get_by_test_id("empty-state")).to_contain_text("Try another program")
    expect(v.page.get_by_test_id("results-count")).to_have_text("0 Program(s) Found")
