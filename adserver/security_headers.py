"""Security headers, in one place for every response the app serves.

Every HTML page (the dashboard, the demo pages) gets a strict Content-Security-Policy: scripts,
styles, fonts and connections only from this origin and never inline script, so an injected
``<script>`` or ``onclick`` does not run; images also from https (schools' logos); no plugins, no
``<base>`` rewriting, forms posting only here, and no framing (clickjacking). No inline style either
(the widget styles its shadow root with a constructed stylesheet, which a policy does not block).
A page that needs another policy sets its own, which is kept. Every response is ``nosniff``.
"""

from __future__ import annotations

from flask import Flask, Response

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: https:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HTML_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def init_app(app: Flask) -> None:
    @app.after_request
    def add_security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if response.mimetype == "text/html":
            for name, value in HTML_HEADERS.items():
                response.headers.setdefault(name, value)
        return response
