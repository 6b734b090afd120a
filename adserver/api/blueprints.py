"""Every blueprint, registered in one place."""

from __future__ import annotations

from flask import Flask

from adserver import pages, widget
from adserver.api import catalog, health, leads, metrics, openapi, privacy, reports, serving


def register_blueprints(app: Flask) -> None:
    for blueprint in (health.bp, metrics.bp, catalog.bp, serving.bp, leads.bp, reports.bp, privacy.bp, openapi.bp,
                      widget.bp, pages.bp):  # fmt: skip
        app.register_blueprint(blueprint)
