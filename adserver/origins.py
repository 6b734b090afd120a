"""Which page a browser request comes from, and whether a publisher's publishable key may be used there.

A ``pk_`` key works only from its publisher's domains (or their subdomains). The origin it was
accepted from is kept on the request (``g.cors_origin``) so that the answer can be read by that
page (``adserver.api.cors``).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from flask import g, request

from adserver.errors import ApiError


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


def page_origin() -> str | None:
    """The origin of the page that made the request. Browsers send no ``Origin`` with a same-origin
    GET (the demo article calling its own server), but they do say ``Sec-Fetch-Site: same-origin``,
    which a page cannot forge: then the page's origin is this server's own."""
    origin = request.headers.get("Origin")
    if origin:
        return origin
    if request.headers.get("Sec-Fetch-Site") == "same-origin":
        return request.host_url.rstrip("/")
    return None


def require_allowed_origin(domains: Iterable[str]) -> None:
    """Refuse a publishable-key request from anywhere but the publisher's domains."""
    origin = page_origin()
    if not origin_allowed(origin, domains):
        raise ApiError(403, "origin_not_allowed", "This publishable key may only be used from the publisher's domains.")
    g.cors_origin = origin
