"""Signing in to the dashboard, its session cookie and CSRF tokens, signing out, and an API that
stays free of cookies (Flask test client, real database and Redis)."""

from __future__ import annotations

import base64
import json
import zlib
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from adserver.dashboard.sessions import session_settings
from tests.conftest import ADMIN_KEY, bearer
from tests.dashboard.conftest import Traffic, csrf_token, sign_in


def _set_cookies(response: Any) -> list[str]:
    return response.headers.getlist("Set-Cookie")


def _session_cookie(response: Any) -> str:
    (cookie,) = [c for c in _set_cookies(response) if c.startswith("adserver_dashboard=")]
    return str(cookie)


def _cookie_payload(cookie: str) -> str:
    """What a signed Flask session cookie says: its first part, base64 (compressed when it starts with '.')."""
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    compressed = value.startswith(".")
    data = value.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    return (zlib.decompress(raw) if compressed else raw).decode()


def _campaign_status(client: FlaskClient, campaign_id: str) -> str:
    return str(client.get(f"/v1/campaigns/{campaign_id}", headers=bearer(ADMIN_KEY)).get_json()["status"])


def _signed_in_page(client: FlaskClient) -> bool:
    html = client.get("/dashboard").get_data(as_text=True)
    return 'data-testid="sign-out"' in html


def test_signing_in_sets_an_httponly_samesite_cookie_scoped_to_the_dashboard_without_the_key(
    client: FlaskClient, traffic: Traffic
) -> None:
    token = csrf_token(client.get("/dashboard").get_data(as_text=True))
    response = client.post("/dashboard/sign-in", data={"key": traffic.north_key, "csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"].endswith("/dashboard")
    cookie = _session_cookie(response)
    flags = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
    assert "httponly" in flags
    assert flags["samesite"] == "SameSite=Lax"
    assert flags["path"] == "Path=/dashboard"
    assert "secure" not in flags  # served over http here (PUBLIC_BASE_URL http://localhost:8000)
    payload = json.loads(_cookie_payload(cookie))
    assert set(payload) == {"key_id", "sign_in"}
    assert traffic.north_key not in cookie and traffic.north_key not in json.dumps(payload)
    assert _signed_in_page(client)


def test_the_cookie_is_secure_when_the_service_is_served_over_https() -> None:
    assert session_settings("https://ads.example.edu")["SESSION_COOKIE_SECURE"] is True
    assert session_settings("http://localhost:8000")["SESSION_COOKIE_SECURE"] is False


def test_a_bad_key_is_refused_with_a_message(client: FlaskClient, app: Flask) -> None:
    token = csrf_token(client.get("/dashboard").get_data(as_text=True))
    response = client.post("/dashboard/sign-in", data={"key": "sk_not_a_key_at_all", "csrf_token": token})
    html = response.get_data(as_text=True)
    assert response.status_code == 401
    assert 'data-testid="login-error"' in html and "unknown or revoked" in html
    assert not any(c.startswith("adserver_dashboard=") and "sign_in" in _cookie_payload(c)
                   for c in _set_cookies(response))  # fmt: skip
    assert not _signed_in_page(client)


def test_publisher_keys_cannot_sign_in(client: FlaskClient, make_publisher: Any) -> None:
    publisher = make_publisher()
    for key, words in ((publisher["secret_key"], "Publisher keys cannot sign in"),
                       (publisher["publishable_key"], "A publishable key (pk_...) cannot sign in")):  # fmt: skip
        token = csrf_token(client.get("/dashboard").get_data(as_text=True))
        response = client.post("/dashboard/sign-in", data={"key": key, "csrf_token": token})
        assert response.status_code == 403
        html = response.get_data(as_text=True)
        assert 'data-testid="login-error"' in html and words in html
        assert not _signed_in_page(client)


def test_a_form_posted_without_its_csrf_token_is_refused(client: FlaskClient, traffic: Traffic) -> None:
    refused = client.post("/dashboard/sign-in", data={"key": ADMIN_KEY})
    assert refused.status_code == 400
    assert "expired or did not come from this dashboard" in refused.get_data(as_text=True)
    assert not _signed_in_page(client)

    token = sign_in(client)
    pause = f"/dashboard/campaigns/{traffic.cpl['id']}/status"
    for data in ({"status": "paused"}, {"status": "paused", "csrf_token": "forged"}):
        assert client.post(pause, data=data).status_code == 400
    assert _campaign_status(client, traffic.cpl["id"]) == "active"
    # With the page's token the same form is taken.
    assert client.post(pause, data={"status": "paused", "csrf_token": token}).status_code == 303
    assert _campaign_status(client, traffic.cpl["id"]) == "paused"


def test_a_csrf_token_from_another_browser_is_refused(app: Flask, client: FlaskClient, traffic: Traffic) -> None:
    other_browser = app.test_client()
    others_token = sign_in(other_browser)
    sign_in(client)
    response = client.post(f"/dashboard/campaigns/{traffic.cpl['id']}/status",
                           data={"status": "paused", "csrf_token": others_token})  # fmt: skip
    assert response.status_code == 400


def test_signing_out_ends_the_session_even_for_a_kept_copy_of_the_cookie(app: Flask, client: FlaskClient) -> None:
    token = sign_in(client)
    kept = client.get_cookie("adserver_dashboard", path="/dashboard")
    assert kept is not None
    response = client.post("/dashboard/sign-out", data={"csrf_token": token})
    assert response.status_code == 303
    assert not _signed_in_page(client)

    replay = app.test_client()
    replay.set_cookie("adserver_dashboard", kept.value, path="/dashboard")
    assert not _signed_in_page(replay)


def test_a_revoked_key_is_signed_out_at_its_next_request(app: Flask, client: FlaskClient, traffic: Traffic) -> None:
    from adserver.extensions import db
    from adserver.models import ApiKey

    sign_in(client, traffic.hollis_key)
    assert _signed_in_page(client)
    with app.app_context():
        db.session.execute(update(ApiKey).where(ApiKey.school_id == traffic.hollis["id"])
                           .values(revoked_at=datetime.now(UTC)))  # fmt: skip
        db.session.commit()
        db.session.remove()
    assert not _signed_in_page(client)


def test_the_api_answers_without_setting_a_cookie_and_ignores_the_dashboards(
    client: FlaskClient, admin: dict[str, str], traffic: Traffic
) -> None:
    sign_in(client)
    answers = [
        client.get("/healthz"),
        client.get("/v1/schools", headers=admin),
        client.get("/v1/ads", query_string={"postal_code": "85004"}, headers=bearer(traffic.publisher["secret_key"])),
        client.post("/v1/publishers", json={"name": "Nurse Paths", "domains": ["nursepaths.example"]}, headers=admin),
        client.get("/v1/reports", query_string={"from": "2026-11-01", "to": "2026-11-30"}, headers=admin),
        client.get("/openapi.json"),
    ]
    for answer in answers:
        assert answer.status_code in (200, 201), answer.get_json()
        assert _set_cookies(answer) == [] and "Cookie" not in answer.headers.get("Vary", "")
    # A signed-in browser's cookie, sent to the API anyway, is no key: the API needs a key.
    cookie = client.get_cookie("adserver_dashboard", path="/dashboard")
    assert cookie is not None
    response = client.get("/v1/schools", headers={"Cookie": f"adserver_dashboard={cookie.value}"})
    assert response.status_code == 401 and _set_cookies(response) == []
