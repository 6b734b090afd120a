"""Abuse limits: request bodies over 64 KB, and how many requests a client may make.

Rates are counted in Redis by the ``limits`` package (Flask-Limiter's engine: its storage,
strategies and rate strings) from the ``endpoint`` decorator, once the key is resolved, because
who is counted depends on the key: browser traffic (a publishable key, or a click) per client IP,
a secret key per key (a publisher's server sends all its visitors' requests from one address),
and unknown keys per client IP. Flask-Limiter's own request hooks are not used: they cost every
request, the unlimited ones included, more than the counting itself. Each route's rates are
settings (``config.settings.RateLimits``); an unlimited one (secret-key ad requests by default)
never touches Redis. Counting uses a sliding window (two counters per client), so a client cannot
double its rate across a window's edge.

Client IPs are counted under a keyed hash, so no address is kept in Redis. A limiter that cannot
count must not stop serving: while its Redis does not answer, every request goes through, and the
outage is logged once, not per request.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

from flask import Flask, current_app, request
from limits import RateLimitItem
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from redis.backoff import NoBackoff
from redis.retry import Retry

from adserver.crypto import keyed_hash
from adserver.errors import ApiError
from config.settings import RateLimits

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
KEY_PREFIX = "ratelimit"
# While Redis does not answer, the limits are not counted; this long after a failure they are tried again.
OUTAGE_RETRY_S = 5.0
# A limiter waits this long for Redis before letting the request through.
REDIS_TIMEOUT_S = 0.25
_EXTENSION = "rate_limits"


@dataclass(frozen=True, slots=True)
class RouteLimits:
    """The rates a route counts against: ``per_ip`` for browser traffic and ``per_key`` for secret keys,
    each the name of a ``RateLimits`` setting (``None``: that traffic is not limited here)."""

    scope: str
    per_ip: str | None
    per_key: str | None = None


ADS = RouteLimits("ads", per_ip="ads_per_ip", per_key="ads_per_key")
LEADS = RouteLimits("leads", per_ip="leads_per_ip", per_key="leads_per_key")
CLICKS = RouteLimits("clicks", per_ip="clicks_per_ip")


class _Counter:
    """The app's rates and their counting in Redis, which fails open."""

    def __init__(self, rates: RateLimits, redis_url: str) -> None:
        # limits spells a Unix socket "redis+unix://"; redis-py "unix://". No retries and short timeouts:
        # a request waits on the limiter's Redis at most once per outage, and briefly.
        uri = "redis+" + redis_url if redis_url.startswith("unix://") else redis_url
        storage = RedisStorage(
            uri, key_prefix=KEY_PREFIX, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),  # type: ignore[arg-type]  # passed on to redis-py
        )  # fmt: skip
        self.strategy = SlidingWindowCounterRateLimiter(storage)
        self.rates = rates
        self._lock = threading.Lock()
        self._down_until: float | None = None  # set during an outage

    def retry_after_s(self, rate: RateLimitItem, *identity: str) -> int | None:
        """Count one request of ``identity``; None when it is within ``rate``, else the seconds to wait."""
        down_until = self._down_until
        if down_until is not None and time.monotonic() < down_until:
            return None
        try:
            if self.strategy.hit(rate, *identity):
                if down_until is not None:
                    self._recovered()
                return None
            reset_at, _ = self.strategy.get_window_stats(rate, *identity)
        except Exception as exc:  # whatever went wrong, an uncounted request goes through
            self._failed(exc)
            return None
        return max(1, math.ceil(reset_at - time.time()))

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            first = self._down_until is None
            self._down_until = time.monotonic() + OUTAGE_RETRY_S
        if first:
            log.warning("rate limits not enforced: their Redis does not answer; letting requests through",
                        extra={"error": type(exc).__name__, "retry_in_s": OUTAGE_RETRY_S})  # fmt: skip

    def _recovered(self) -> None:
        with self._lock:
            self._down_until = None
        log.info("rate limits enforced again: their Redis answers")


def init_app(app: Flask, rates: RateLimits) -> None:
    """Refuse bodies over 64 KB on every route, and count rates in the app's Redis."""
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES  # also bounds a body sent without Content-Length
    app.extensions[_EXTENSION] = _Counter(rates, app.config["REDIS_URL"])

    @app.before_request
    def refuse_large_bodies() -> None:
        # Before any work: a route that never reads its body would otherwise take it.
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise ApiError(413, "payload_too_large", "A request body must not exceed 64 KB.")


def _client() -> tuple[str, str]:
    # A keyed hash: the address itself never reaches Redis.
    return "ip", keyed_hash("ip:" + (request.remote_addr or ""))[:32]


def _check(scope: str, rate: RateLimitItem, identity: tuple[str, str], message: str) -> None:
    counter: _Counter = current_app.extensions[_EXTENSION]
    wait_s = counter.retry_after_s(rate, scope, *identity)
    if wait_s is not None:
        raise ApiError(429, "rate_limited", f"{message} Try again in {wait_s} s.", headers={"Retry-After": str(wait_s)})


def check_route(route: RouteLimits, secret_key_id: str | None) -> None:
    """Count the request against its route's rate: per secret key when one is given (``secret_key_id``),
    else per client IP. 429 ``rate_limited`` with ``Retry-After`` when over."""
    rates: RateLimits = current_app.extensions[_EXTENSION].rates
    setting = route.per_key if secret_key_id is not None else route.per_ip
    rate: RateLimitItem | None = getattr(rates, setting) if setting else None
    if rate is None:  # unlimited: Redis is not asked
        return
    identity = ("key", secret_key_id) if secret_key_id is not None else _client()
    _check(route.scope, rate, identity, "Too many requests.")


def check_failed_authentication() -> None:
    """Count an unknown key against its client IP: 429 once the IP is over its rate of failures."""
    rate = current_app.extensions[_EXTENSION].rates.failed_auth_per_ip
    if rate is not None:
        _check("failed_auth", rate, _client(), "Too many requests with unknown keys from this address.")
