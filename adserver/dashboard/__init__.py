"""The marketer dashboard at ``/dashboard``: server-rendered pages for admins and schools, signed in
with a key pasted once, with their templates and static files (the vendored chart library included)."""

from __future__ import annotations

from flask import Flask

from adserver.dashboard.formatting import FILTERS
from adserver.dashboard.sessions import DashboardOnlySessions, session_settings
from adserver.dashboard.views import bp
from adserver.extensions import csrf


def init_dashboard(app: Flask) -> None:
    """Sessions on the dashboard's paths only, CSRF tokens checked by the dashboard's own views, its
    figures' formats for templates, and its pages."""
    app.config.update(session_settings(app.config["PUBLIC_BASE_URL"]))
    # The dashboard checks its forms itself (views.check_csrf_token); the JSON API takes keys and no tokens.
    app.config.update(WTF_CSRF_CHECK_DEFAULT=False, WTF_CSRF_TIME_LIMIT=None)  # a token lives as long as its session
    app.session_interface = DashboardOnlySessions()
    csrf.init_app(app)
    app.jinja_env.filters.update(FILTERS)
    app.register_blueprint(bp)
