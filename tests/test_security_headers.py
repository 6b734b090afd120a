"""Security headers: every HTML page the app serves, whichever blueprint serves it, gets a strict
Content-Security-Policy, nosniff and a Referrer-Policy; every other answer nosniff."""

from __future__ import annotations

from flask import Response


def test_every_html_page_gets_a_strict_policy_and_other_answers_nosniff(app):
    from adserver import create_app
    from config.settings import load_settings

    pages = create_app(load_settings())
    try:
        # Pages of any blueprint, added as the dashboard and demo pages will be.
        pages.add_url_rule("/any-page", "any_page", lambda: "<!doctype html><title>x</title>")
        own = "default-src 'none'"
        own_page = Response("<p>x</p>", mimetype="text/html", headers={"Content-Security-Policy": own})
        pages.add_url_rule("/own-policy", "own_policy", lambda: own_page)
        client = pages.test_client()
        page, kept, api = client.get("/any-page"), client.get("/own-policy"), client.get("/healthz")
    finally:
        pages.extensions["campaign_index"].stop()
        app.extensions["celery"].set_default()

    policy = dict(part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'", "no inline script, no eval, no other origin"
    assert policy["default-src"] == "'self'" and policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'none'"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert kept.headers["Content-Security-Policy"] == own, "a page that sets its own policy keeps it"
    assert api.headers["X-Content-Type-Options"] == "nosniff" and "Content-Security-Policy" not in api.headers
