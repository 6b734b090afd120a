"""Abuse limits through the API: rates per browser address and per secret key, unknown keys per address,
the 64 KB body limit, and serving that goes on when the limiter's Redis is down.

The rates are settings: a test of one builds an app with a short window beside the session's, sharing its
database and Redis."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from config.settings import load_settings
from tests.conftest import bearer
from tests.leads.conftest import LeadWorld

ORIGIN = {"Origin": "https://careerguides.example"}


def _ads(client: FlaskClient, key: str, ip: str = "198.51.100.7", **headers: str) -> Any:
    return client.get("/v1/ads", query_string={"postal_code": "85004", "key": key}, headers={**ORIGIN, **headers},
                      environ_base={"REMOTE_ADDR": ip})  # fmt: skip


def _wait_out(response: Any) -> None:
    time.sleep(int(response.headers["Retry-After"]))


def _limited(response: Any) -> None:
    assert response.status_code == 429, response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) >= 1
    assert response.get_json()["error"]["code"] == "rate_limited" and response.get_json()["error"]["message"]


def test_browser_ad_requests_over_the_rate_get_429_with_retry_after_then_recover(limited, make_publisher):
    client = limited(RATE_LIMIT_ADS_PER_IP="2/second")
    key = make_publisher()["publishable_key"]
    assert [_ads(client, key).status_code for _ in range(2)] == [200, 200]
    refused = _ads(client, key)
    _limited(refused)
    assert refused.headers["Access-Control-Allow-Origin"] == ORIGIN["Origin"], "the widget can read why"
    assert _ads(client, key, ip="198.51.100.8").status_code == 200, "another address has its own count"
    _wait_out(refused)
    assert _ads(client, key).status_code == 200


def test_secret_key_ad_requests_are_not_limited_nor_counted(app, limited, make_publisher):
    from adserver.extensions import redis_client

    client = limited(RATE_LIMIT_ADS_PER_IP="2/second")
    headers = bearer(make_publisher()["secret_key"])
    statuses = [client.get("/v1/ads?postal_code=85004", headers=headers).status_code for _ in range(10)]
    assert statuses == [200] * 10
    with app.app_context():
        assert list(redis_client.client.scan_iter("ratelimit:*")) == [], "Redis is not asked"


def test_lead_submissions_are_limited_per_secret_key_and_per_browser_address(limited, make_world, make_publisher):
    world: LeadWorld = make_world(campaign={"caps": {"leads_per_day": None, "leads_per_month": None}})
    client = limited(RATE_LIMIT_LEADS_PER_KEY="3/second", RATE_LIMIT_LEADS_PER_IP="2/second")

    def submit(headers: dict[str, str], ip: str = "198.51.100.7", **query: str) -> Any:
        return client.post("/v1/leads", json=world.lead(), headers=headers, query_string=query,
                           environ_base={"REMOTE_ADDR": ip})  # fmt: skip

    assert [submit(world.publisher_headers).status_code for _ in range(3)] == [201] * 3
    _limited(submit(world.publisher_headers))
    assert submit(world.publisher_headers, ip="198.51.100.9").status_code == 429, "a key's count is not per address"

    browser = {**ORIGIN}
    key = world.publisher["publishable_key"]
    assert [submit(browser, key=key).status_code for _ in range(2)] == [201] * 2
    _limited(submit(browser, key=key))
    assert submit(browser, ip="198.51.100.8", key=key).status_code == 201


def test_clicks_are_limited_per_address(limited, make_world):
    world: LeadWorld = make_world()
    client = limited(RATE_LIMIT_CLICKS_PER_IP="2/second")
    (ad,) = client.get("/v1/ads?postal_code=85004", headers=world.publisher_headers).get_json()["ads"]
    path = "/" + ad["click_url"].split("/", 3)[3]
    clicks = [client.get(path, environ_base={"REMOTE_ADDR": "198.51.100.7"}) for _ in range(3)]
    assert [click.status_code for click in clicks] == [302, 302, 429]
    _limited(clicks[-1])


def test_a_flood_of_unknown_keys_is_limited_while_a_valid_key_keeps_working(limited, make_publisher):
    client = limited(RATE_LIMIT_FAILED_AUTH_PER_IP="3/second")
    valid = bearer(make_publisher()["secret_key"])

    def ads(headers: dict[str, str], ip: str = "198.51.100.7") -> Any:
        return client.get("/v1/ads?postal_code=85004", headers=headers, environ_base={"REMOTE_ADDR": ip})

    guesses = [ads(bearer(f"sk_guess_{n:04d}")) for n in range(5)]
    assert [guess.status_code for guess in guesses] == [401, 401, 401, 429, 429]
    _limited(guesses[-1])
    assert ads(valid).status_code == 200, "a valid key from the same address still works"
    assert client.get("/v1/schools", headers=bearer("sk_guess_x"), environ_base={"REMOTE_ADDR": "198.51.100.7"}
                      ).status_code == 429, "on every route"  # fmt: skip
    assert ads(bearer("sk_guess_other"), ip="198.51.100.8").status_code == 401
    _wait_out(guesses[-1])
    assert ads(bearer("sk_guess_later")).status_code == 401


@pytest.mark.parametrize(("trusted", "separate"), [("0", False), ("1", True)], ids=["untrusted", "one-proxy"])
def test_x_forwarded_for_names_the_client_only_behind_trusted_proxies(limited, make_publisher, trusted, separate):
    client = limited(RATE_LIMIT_ADS_PER_IP="1/minute", TRUSTED_PROXIES=trusted)
    key = make_publisher()["publishable_key"]
    first = _ads(client, key, **{"X-Forwarded-For": "203.0.113.1"})
    second = _ads(client, key, **{"X-Forwarded-For": "203.0.113.2"})
    assert (first.status_code, second.status_code) == (200, 200 if separate else 429)


def test_a_body_over_64_kb_is_413_on_every_endpoint(client, admin, make_publisher):
    body = {"name": "x" * (64 * 1024)}
    publisher = make_publisher()
    for method, path, headers in (("post", "/v1/schools", admin), ("post", "/v1/privacy/opt-out", admin),
                                  ("post", "/v1/leads", bearer(publisher["secret_key"])),
                                  ("get", "/v1/ads?postal_code=85004", bearer(publisher["secret_key"])),
                                  ("post", "/v1/unknown", admin)):  # fmt: skip
        response = getattr(client, method)(path, json=body, headers=headers)
        assert response.status_code == 413, (method, path, response.status_code)
        assert response.get_json()["error"]["code"] == "payload_too_large"
    assert client.post("/v1/schools", json={"name": "x" * 60_000}, headers=admin).status_code == 422


def test_rates_and_429_are_in_the_openapi_document(client):
    operations = client.get("/openapi.json").get_json()["paths"]
    assert "429" in operations["/v1/ads"]["get"]["responses"] and "429" in operations["/v1/leads"]["post"]["responses"]
    assert "413" in operations["/v1/schools"]["post"]["responses"]


# ---- Redis down -----------------------------------------------------------------------------


def test_with_its_redis_stopped_ads_are_answered_as_without_a_limiter(another_app, private_redis, make_world,
                                                                       caplog):  # fmt: skip
    """Serving must not stop because a limiter cannot count: never a 429 or a 500 from it, and the outage
    is logged once."""
    url, server = private_redis
    world: LeadWorld = make_world()
    settings = replace(load_settings(), redis_url=url, embedded_redis=False)
    with_limits = another_app(settings)
    without = another_app(replace(settings, rate_limits=replace(settings.rate_limits, ads_per_ip=None)))
    key = world.publisher["publishable_key"]
    assert _ads(with_limits, key).get_json()["count"] == 1, "the campaign serves while Redis is up"

    server.terminate()
    server.wait()
    caplog.set_level(logging.WARNING, logger="adserver.api.limits")
    # Where the campaign serves (its counters are in Redis: 503), where none does (no Redis needed), no such code.
    for postal_code in ("85004", "K1A 0B1", "00000"):
        answers = [
            client.get("/v1/ads", query_string={"postal_code": postal_code, "key": key}, headers=ORIGIN)
            for client in (with_limits, without, with_limits)
        ]
        first, plain, again = ((a.status_code, a.get_json().get("count"), a.get_json().get("error", {}).get("code"))
                               for a in answers)  # fmt: skip
        assert first == plain == again, postal_code
        assert first[0] in (200, 422, 503)
    outages = [r for r in caplog.records if "not enforced" in r.getMessage()]
    assert len(outages) == 1


def test_a_full_redis_is_a_503_not_a_500(another_app, private_redis, make_world) -> None:
    """Redis run with noeviction (as docs/deploy.md says) refuses writes once full: the API answers 503
    with Retry-After, as for any backing service that cannot serve."""
    url, _ = private_redis
    world: LeadWorld = make_world()
    client = another_app(replace(load_settings(), redis_url=url, embedded_redis=False))
    key = world.publisher["publishable_key"]
    assert _ads(client, key).status_code == 200
    server = redis.Redis.from_url(url)
    server.config_set("maxmemory-policy", "noeviction")
    server.config_set("maxmemory", server.info("memory")["used_memory"])  # full from now on
    response = _ads(client, key)
    assert response.status_code == 503, response.get_json()
    assert response.get_json()["error"]["code"] == "service_unavailable" and response.headers["Retry-After"]
