"""The publisher widget: ``/widget.js``, the one script a publisher's page embeds.

Publishers embed ``/widget.js``: it is cached for an hour and revalidated by its
ETag (a hash of its content), so a new version reaches every page within the
hour. Our own pages embed ``/widget.<hash>.js``, which never changes and is
cached for a year.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from flask import Blueprint, Response, request, url_for

bp = Blueprint("widget", __name__)

SCRIPT = Path(__file__).parent / "static" / "widget.js"
EMBED_MAX_AGE_S = 3600
VERSIONED_MAX_AGE_S = 365 * 24 * 3600


@cache
def widget_script() -> tuple[bytes, str]:
    """The script and the first 16 hex digits of its SHA-256 (read once per process)."""
    content = SCRIPT.read_bytes()
    return content, hashlib.sha256(content).hexdigest()[:16]


def versioned_widget_url() -> str:
    """The URL of this exact version of the script, for pages that can change with it."""
    return url_for("widget.versioned_script", digest=widget_script()[1])


def _script_response(cache_control: str) -> Response:
    content, digest = widget_script()
    response = Response(content, mimetype="text/javascript")
    response.headers["Cache-Control"] = cache_control
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Any page may load it, including pages that isolate themselves (COEP) or check its integrity.
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.set_etag(digest)
    response.make_conditional(request)
    return response


@bp.get("/widget.js")
def embed_script() -> Response:
    return _script_response(f"public, max-age={EMBED_MAX_AGE_S}")


@bp.get("/widget.<digest>.js")
def versioned_script(digest: str) -> Response:
    if digest != widget_script()[1]:
        # A page still naming an older version gets the current one, cached like the embed URL.
        return _script_response(f"public, max-age={EMBED_MAX_AGE_S}")
    return _script_response(f"public, max-age={VERSIONED_MAX_AGE_S}, immutable")
