"""Operator commands for keys and secrets: ``flask --app wsgi keys ...``.

``list``, ``create`` and ``revoke`` API keys; ``rotate-school-secret`` (a school's ``whsec_``
signing secret, the new one shown once); ``rotate-encryption-key`` (every encrypted value sealed
again under the current ``ENCRYPTION_KEY``). docs/deploy.md has the procedures.
"""

from __future__ import annotations

from datetime import timedelta

import click
from flask.cli import AppGroup

from adserver.auth import ROLES
from adserver.services.keys import api_keys, encryption, signing_secrets
from adserver.services.keys.api_keys import KeyRequestError

keys = AppGroup("keys", help="API keys, schools' signing secrets and the encryption key.")


@keys.command("list")
@click.option("--school-id", default=None, help="Only this school's keys.")
@click.option("--publisher-id", default=None, help="Only this publisher's keys.")
@click.option("--all", "include_revoked", is_flag=True, help="Revoked keys too.")
def list_keys(school_id: str | None, publisher_id: str | None, include_revoked: bool) -> None:
    """List keys (never their secrets): id, role, kind, the secret's first characters, owner, dates."""
    click.echo("id\trole\tkind\tprefix\towner\tcreated\trevoked")
    for key in api_keys.list_keys(school_id=school_id, publisher_id=publisher_id, include_revoked=include_revoked):
        owner = key.school_id or key.publisher_id or "-"
        revoked = key.revoked_at.isoformat() if key.revoked_at else "-"
        click.echo(f"{key.id}\t{key.role}\t{key.kind}\t{key.display_prefix}\t{owner}\t"
                   f"{key.created_at.isoformat()}\t{revoked}")  # fmt: skip


@keys.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--school-id", default=None, help="The school of a school key.")
@click.option("--publisher-id", default=None, help="The publisher of a publisher key.")
@click.option("--publishable", is_flag=True, help="A publisher's pk_ key for browsers, instead of an sk_ key.")
def create_key(role: str, school_id: str | None, publisher_id: str | None, publishable: bool) -> None:
    """Issue a key and print its secret (shown once; only its hash is stored)."""
    try:
        key, secret = api_keys.issue_key(role, school_id=school_id, publisher_id=publisher_id, publishable=publishable)
    except KeyRequestError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"{key.id}\t{secret}")


@keys.command("revoke")
@click.argument("key_ids", nargs=-1, required=True)
def revoke_keys(key_ids: tuple[str, ...]) -> None:
    """Revoke keys by id (see `keys list`). Other web processes refuse them within 30 seconds."""
    for key_id in key_ids:
        try:
            key = api_keys.revoke_key(key_id)
        except KeyRequestError as exc:
            raise click.UsageError(str(exc)) from None
        click.echo(f"{key.id}\trevoked {key.revoked_at.isoformat() if key.revoked_at else ''}")


@keys.command("rotate-school-secret")
@click.argument("school_id")
@click.option("--overlap-hours", type=click.FloatRange(min=0), default=24.0, show_default=True,
              help="How long requests also carry a signature under the old secret.")  # fmt: skip
def rotate_school_secret(school_id: str, overlap_hours: float) -> None:
    """Give a school a new whsec_ signing secret and print it (shown once). Until the overlap ends,
    each request carries a signature under the old secret and one under the new."""
    try:
        secret = signing_secrets.rotate_school_secret(school_id, timedelta(hours=overlap_hours))
    except KeyRequestError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(secret)


@keys.command("rotate-encryption-key")
@click.option("--batch-size", type=click.IntRange(min=1, max=10_000), default=500, show_default=True)
def rotate_encryption_key(batch_size: int) -> None:
    """Seal every encrypted value (leads' personal fields and consent IP, schools' signing secrets)
    again under ENCRYPTION_KEY; values under ENCRYPTION_KEYS_OLD still decrypt while it runs. Safe to
    run again after a stop: values already under the current key are skipped."""
    totals: dict[str, list[int]] = {}
    unreadable: list[str] = []
    for batch in encryption.reseal_everything(batch_size):
        counts = totals.setdefault(batch.table, [0, 0, 0])
        counts[0] += batch.rows
        counts[1] += batch.resealed
        counts[2] += batch.changed
        unreadable += [f"{batch.table} {row_id}" for row_id in batch.unreadable]
        click.echo(f"{batch.table}: {counts[0]} rows read, {counts[1]} sealed again (up to {batch.last_id})")
    for table, (rows, resealed, changed) in totals.items():
        left = f", {changed} changed while read (run again)" if changed else ""
        click.echo(f"done {table}: {rows} rows, {resealed} sealed again under the current key{left}")
    if unreadable:
        click.echo("values no key opens (is a key missing from ENCRYPTION_KEYS_OLD?):", err=True)
        for row in unreadable:
            click.echo(f"  {row}", err=True)
        raise SystemExit(1)
