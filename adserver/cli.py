"""Operator commands: ``flask --app wsgi create-admin-key``, ``seed-demo`` and ``report``; ``keys ...``
(adserver.key_commands)."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext

from adserver.auth import create_api_key
from adserver.extensions import db
from adserver.key_commands import keys


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


@click.command("seed-demo-traffic")
@click.option("--days", default=30, show_default=True, help="Days of traffic, ending yesterday.")
@with_appcontext
def seed_demo_traffic(days: int) -> None:
    """Add plausible traffic for the demo catalog (impressions, clicks, leads); once only."""
    from adserver.demo_traffic import seed_demo_traffic as seed

    for line in seed(days):
        click.echo(line)


@click.command("report")
@click.option("--from", "start", required=True, help="First day, inclusive (UTC), e.g. 2026-11-01.")
@click.option("--to", "end", required=True, help="Last day, inclusive (UTC).")
@click.option("--group-by", default="day", show_default=True, help="Comma-separated: day, campaign, school, publisher.")
@click.option("--campaign-id", default=None)
@click.option("--school-id", default=None)
@click.option("--publisher-id", default=None)
@click.option("--format", "output", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@with_appcontext
def report(start: str, end: str, group_by: str, campaign_id: str | None, school_id: str | None,
           publisher_id: str | None, output: str) -> None:  # fmt: skip
    """Print the campaign report of GET /v1/reports (every school and publisher)."""
    from adserver.errors import ApiError
    from adserver.schemas.reports import ReportQuery
    from adserver.services.reporting.reports import Scope, build_report, render_table, report_csv, report_json
    from adserver.validation import parse_model

    try:
        query = parse_model(ReportQuery, {"from": start, "to": end, "group_by": group_by, "campaign_id": campaign_id,
                                          "school_id": school_id, "publisher_id": publisher_id})  # fmt: skip
        built = build_report(query, Scope())
    except ApiError as exc:
        fields = "; ".join(f"{name}: {why}" for name, why in (exc.fields or {}).items())
        raise click.UsageError(f"{exc.message} {fields}".strip()) from None
    if output == "csv":
        click.echo(report_csv(built), nl=False)
    elif output == "json":
        click.echo(report_json(built).decode())
    else:
        click.echo(render_table(built))


def register_commands(app: Flask) -> None:
    app.cli.add_command(keys)
    app.cli.add_command(create_admin_key)
    app.cli.add_command(seed_demo)
    app.cli.add_command(seed_demo_traffic)
    app.cli.add_command(report)
