"""Blueprints, registered in one place."""

from __future__ import annotations

from flask import Flask

from adserver.api import catalog, health, leads, openapi, privacy, serving


def register_blueprints(app: Flask) -> None:
    for blueprint in (health.bp, catalog.bp, serving.bp, leads.bp, privacy.bp, openapi.bp):
        app.register_blueprint(blueprint)
