"""The server's own HTML pages: the front door (``/``), the API reference (``/docs``) and the demo
career article with the widget (``/demo/medical-office-manager``).

Every page keeps its scripts and styles in static files, so each is served with a strict
Content-Security-Policy: no inline script or style, nothing from another site but images.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, render_template, request

from adserver.demo import demo_page_key_if_seeded
from adserver.widget import versioned_widget_url

bp = Blueprint("pages", __name__, template_folder="templates", static_folder="static", static_url_path="/static/pages")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# The demo article may start the widget with a postal code from its own URL (?postal_code=33620).
_POSTAL_CODE = re.compile(r"^(\d{5}(-\d{4})?|[A-Za-z]\d[A-Za-z] ?\d[A-Za-z]\d)$")


@bp.after_request
def strict_content_security_policy(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


@bp.get("/")
def front_door() -> str:
    return render_template("pages/front_door.html")


@bp.get("/docs")
def api_reference() -> str:
    return render_template("pages/docs.html")


@bp.get("/demo/medical-office-manager")
def demo_article() -> tuple[str, int]:
    """The demo career article, with the demo publisher's widget under it."""
    key = demo_page_key_if_seeded()
    if key is None:
        return render_template("pages/demo_not_seeded.html"), 404
    postal_code = request.args.get("postal_code", "").strip()
    return render_template(
        "pages/demo_article.html",
        publishable_key=key,
        widget_src=versioned_widget_url(),
        postal_code=postal_code if _POSTAL_CODE.match(postal_code) else "",
    ), 200
