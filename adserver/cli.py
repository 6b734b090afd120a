"""Operator commands: ``flask --app wsgi create-admin-key`` and ``seed-demo``."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext

from adserver.auth import create_api_key
from adserver.extensions import db


@click.command("create-admin-key")
@with_appcontext
def create_admin_key() -> None:
    """Create an admin key and print it (shown once; only its hash is stored)."""
    _, secret = create_api_key("admin")
    db.session.commit()
    click.echo(secret)


@click.command("seed-demo")
@with_appcontext
def seed_demo() -> None:
    """Add the demo catalog (five fictional schools and a publisher); running it again adds nothing."""
    from adserver.demo import seed_demo_catalog

    for line in seed_demo_catalog():
        click.echo(line)


def register_commands(app: Flask) -> None:
    app.cli.add_command(create_admin_key)
    app.cli.add_command(seed_demo)
