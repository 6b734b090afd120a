"""Browser access with publishable keys: only from the publisher's own domains.

A ``pk_`` key is accepted only when the request's ``Origin`` is one of its
publisher's domains (or a subdomain); such answers carry
``Access-Control-Allow-Origin`` for that origin, errors included, so the widget
can read them. Preflights are answered for the browser endpoints; the real
request is where the origin is enforced.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from flask import Flask, Response, g, request

from adserver.errors import ApiError

BROWSER_PATHS = ("/v1/ads", "/v1/leads")
ALLOWED_HEADERS = "Content-Type, X-Publisher-Key, Idempotency-Key, X-Request-Id"


def origin_allowed(origin: str | None, domains: Iterable[str]) -> bool:
    if not origin:
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host, netloc = parts.hostname.lower(), parts.netloc.lower()
    for domain in domains:
        domain = domain.lower()
        candidate = netloc if ":" in domain else host
        if candidate == domain or candidate.endswith("." + domain):
            return True
    return False


def require_allowed_origin(domains: Iterable[str]) -> None:
    """Refuse a publishable-key request from anywhere but the publisher's domains."""
    origin = request.headers.get("Origin")
    if not origin_allowed(origin, domains):
        raise ApiError(403, "origin_not_allowed", "This publishable key may only be used from the publisher's domains.")
    g.cors_origin = origin


def init_cors(app: Flask) -> None:
    @app.before_request
    def answer_preflight() -> Response | None:
        if request.method != "OPTIONS" or not request.path.startswith(BROWSER_PATHS):
            return None
        response = Response(status=204)
        origin = request.headers.get("Origin")
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response.headers["Access-Control-Max-Age"] = "600"
            response.headers["Vary"] = "Origin"
        return response

    @app.after_request
    def allow_origin(response: Response) -> Response:
        origin = g.get("cors_origin")
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = "Retry-After, X-Request-Id"
            response.headers.add("Vary", "Origin")
        return response
