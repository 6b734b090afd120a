"""Browser access: publishable keys only from the publisher's own domains, and the public taxonomy
from anywhere.

A ``pk_`` key is accepted only when the page's origin is one of its publisher's
domains (or a subdomain); such answers carry ``Access-Control-Allow-Origin`` for
that origin. Error answers of the keyed browser endpoints carry it for any
origin, a refused origin's 403 included, so the widget can read why it was
turned away and say so; they hold nothing but the error. ``GET /v1/interests``
is public and readable from any origin. Preflights are answered for the browser
endpoints; the real request is where the origin is enforced (``adserver.origins``).
"""

from __future__ import annotations

from flask import Flask, Response, g, request

KEYED_PATHS = ("/v1/ads", "/v1/leads")
PUBLIC_PATHS = ("/v1/interests",)
ALLOWED_HEADERS = "Content-Type, X-Publisher-Key, Idempotency-Key, X-Request-Id"
EXPOSED_HEADERS = "Retry-After, X-Request-Id"


def _cors_origin(response: Response) -> str | None:
    """The origin this answer may be read from, or None for no CORS headers."""
    if request.path.startswith(PUBLIC_PATHS):
        return "*"
    allowed: str | None = g.get("cors_origin")
    if allowed:
        return allowed
    if response.status_code >= 400 and request.path.startswith(KEYED_PATHS):
        return request.headers.get("Origin")
    return None


def init_cors(app: Flask) -> None:
    @app.before_request
    def answer_preflight() -> Response | None:
        if request.method != "OPTIONS" or not request.path.startswith(KEYED_PATHS + PUBLIC_PATHS):
            return None
        response = Response(status=204)
        origin = request.headers.get("Origin")
        if origin:
            response.headers["Access-Control-Allow-Origin"] = "*" if request.path.startswith(PUBLIC_PATHS) else origin
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response.headers["Access-Control-Max-Age"] = "600"
            response.headers["Vary"] = "Origin"
        return response

    @app.after_request
    def allow_origin(response: Response) -> Response:
        origin = _cors_origin(response)
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
            if origin != "*":
                response.headers.add("Vary", "Origin")
        return response
