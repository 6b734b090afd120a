"""The operators' key commands: API keys issued, listed and revoked; a school's signing secret
rotated without a gap; the encryption key rotated with every value sealed again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import inspect as inspect_model
from sqlalchemy import select
from standardwebhooks import Webhook, WebhookVerificationError

from adserver.models import Base
from config.settings import ConfigError, load_settings
from tests.conftest import bearer
from tests.leads.conftest import Scripted, deliver_until_settled, lead_status


def keys_command(app, *args: str) -> Any:
    result = app.test_cli_runner().invoke(args=["keys", *args])
    return result


def test_a_school_key_is_issued_listed_and_revoked(app, client, make_school):
    school = make_school()
    created = keys_command(app, "create", "--role", "school", "--school-id", school["id"])
    assert created.exit_code == 0, created.output
    key_id, secret = created.output.split()
    assert secret.startswith("sk_")
    assert client.get(f"/v1/schools/{school['id']}", headers=bearer(secret)).status_code == 200

    listed = keys_command(app, "list", "--school-id", school["id"])
    assert key_id in listed.output and school["id"] in listed.output
    assert secret not in listed.output  # only the first characters, to tell keys apart

    revoked = keys_command(app, "revoke", key_id)
    assert revoked.exit_code == 0, revoked.output
    assert client.get(f"/v1/schools/{school['id']}", headers=bearer(secret)).status_code == 401
    assert key_id not in keys_command(app, "list", "--school-id", school["id"]).output
    assert key_id in keys_command(app, "list", "--school-id", school["id"], "--all").output


def test_admin_and_publisher_keys_are_issued_and_a_revoked_one_stops_working(app, client, make_publisher):
    admin = keys_command(app, "create", "--role", "admin")
    assert admin.exit_code == 0, admin.output
    admin_id, admin_secret = admin.output.split()
    assert client.get("/v1/schools", headers=bearer(admin_secret)).status_code == 200

    publisher = make_publisher()
    browser = keys_command(app, "create", "--role", "publisher", "--publisher-id", publisher["id"], "--publishable")
    assert browser.exit_code == 0, browser.output
    assert browser.output.split()[1].startswith("pk_")
    server = keys_command(app, "create", "--role", "publisher", "--publisher-id", publisher["id"])
    _, server_secret = server.output.split()
    assert client.get("/v1/ads?postal_code=85004", headers=bearer(server_secret)).status_code == 200

    assert keys_command(app, "revoke", admin_id).exit_code == 0
    assert client.get("/v1/schools", headers=bearer(admin_secret)).status_code == 401


@pytest.mark.parametrize(
    "args",
    [
        ("--role", "school"),  # which school?
        ("--role", "school", "--school-id", "sch_unknown"),
        ("--role", "admin", "--publishable"),
        ("--role", "publisher", "--publisher-id", "pub_unknown"),
    ],
)
def test_a_key_that_cannot_be_issued_is_refused_saying_why(app, args):
    result = keys_command(app, "create", *args)
    assert result.exit_code == 2
    assert "Error:" in result.output


def test_revoking_an_unknown_key_says_so(app):
    result = keys_command(app, "revoke", "key_unknown")
    assert result.exit_code == 2
    assert "no key key_unknown" in result.output


def _verify(secret: str, received: Any) -> bool:
    try:
        Webhook(secret).verify(received.body, received.headers)
    except WebhookVerificationError:
        return False
    return True


def test_a_rotated_signing_secret_signs_beside_the_old_one_until_the_overlap_ends(app, client, admin, http_world,
                                                                                 school_server):  # fmt: skip
    old_secret = http_world.secret
    result = keys_command(app, "rotate-school-secret", http_world.school["id"], "--overlap-hours", "1")
    assert result.exit_code == 0, result.output
    new_secret = result.output.strip()
    assert new_secret.startswith("whsec_") and new_secret != old_secret

    lead = client.post("/v1/leads", json=http_world.lead(), headers=http_world.publisher_headers).get_json()
    assert deliver_until_settled(app, client, admin, lead["id"])["status"] == "delivered"
    during = school_server.received[-1]
    assert len(during.headers["webhook-signature"].split()) == 2
    assert _verify(old_secret, during) and _verify(new_secret, during)

    again = keys_command(app, "rotate-school-secret", http_world.school["id"], "--overlap-hours", "0")
    newest = again.output.strip()
    lead = client.post("/v1/leads", json=http_world.lead(), headers=http_world.publisher_headers).get_json()
    assert deliver_until_settled(app, client, admin, lead["id"])["status"] == "delivered"
    after = school_server.received[-1]
    assert len(after.headers["webhook-signature"].split()) == 1
    assert _verify(newest, after)
    assert not _verify(new_secret, after) and not _verify(old_secret, after)


@contextmanager
def encryption_key_rotated(app) -> Iterator[str]:
    """ENCRYPTION_KEY replaced by a new key, the old one listed in ENCRYPTION_KEYS_OLD and kept as the
    hash key, as docs/deploy.md says; the app's own settings come back afterwards."""
    saved = {name: app.config[name] for name in ("ENCRYPTION_KEY", "ENCRYPTION_KEYS_OLD", "HASH_KEY")}
    old_key = saved["ENCRYPTION_KEY"]
    app.config.update(ENCRYPTION_KEY=Fernet.generate_key().decode(), ENCRYPTION_KEYS_OLD=(old_key,),
                      HASH_KEY=saved["HASH_KEY"])  # fmt: skip
    try:
        yield old_key
    finally:
        app.config.update(saved)


def _sealed_values(app) -> list[str]:
    from adserver.extensions import db
    from adserver.services.keys.encryption import SEALED

    with app.app_context():
        values = [value for sealed in SEALED
                  for row in db.session.execute(select(*(sealed.table.c[name] for name in sealed.columns)))
                  for value in row if value]  # fmt: skip
        db.session.remove()
    return values


def test_rotating_the_encryption_key_seals_every_value_again_and_keeps_duplicates_found(
    app, client, admin, http_world, school_server
):
    from adserver.crypto import under_current_key
    from adserver.services.keys.encryption import SEALED, reseal_batch

    first = http_world.lead(email="Grace.Hopper@example.com")
    kept = client.post("/v1/leads", json=first, headers=http_world.publisher_headers).get_json()["id"]
    assert client.post("/v1/leads", json=http_world.lead(), headers=http_world.publisher_headers).status_code == 201
    erased_person = http_world.lead()
    erased = client.post("/v1/leads", json=erased_person, headers=http_world.publisher_headers).get_json()["id"]
    assert client.post("/v1/privacy/erase", json={"email": erased_person["email"]}, headers=admin).status_code == 200
    keys_command(app, "rotate-school-secret", http_world.school["id"], "--overlap-hours", "1")
    before = _sealed_values(app)

    with encryption_key_rotated(app):
        # Meanwhile every value still opens, and the same person is still a duplicate.
        assert lead_status(client, admin, kept)["email"] == "Grace.Hopper@example.com"
        repeat = {**http_world.lead(), "email": "grace.hopper@EXAMPLE.com"}
        assert client.post("/v1/leads", json=repeat, headers=http_world.publisher_headers).status_code == 409

        with app.app_context():  # a run that stopped after its first batch (the first lead)
            assert reseal_batch(SEALED[0], None, 1).resealed == 1
        result = keys_command(app, "rotate-encryption-key", "--batch-size", "2")
        assert result.exit_code == 0, result.output
        # The second lead; the erased one has nothing to seal; the school's secret and its previous one.
        assert "done leads: 3 rows, 1 sealed again under the current key" in result.output
        assert "done schools: 1 rows, 1 sealed again under the current key" in result.output
        after = _sealed_values(app)
        with app.app_context():
            assert all(under_current_key(value) for value in after)
        assert len(after) == len(before) and not set(after) & set(before)

        again = keys_command(app, "rotate-encryption-key")
        assert "done leads: 3 rows, 0 sealed again" in again.output
        assert "done schools: 1 rows, 0 sealed again" in again.output

        app.config["ENCRYPTION_KEYS_OLD"] = ()  # the old key is gone
        detail = lead_status(client, admin, kept)
        assert (detail["email"], detail["first_name"]) == ("Grace.Hopper@example.com", first["first_name"])
        assert lead_status(client, admin, erased).get("erased") is True
        assert client.post("/v1/leads", json=repeat, headers=http_world.publisher_headers).status_code == 409
        school_server.default = Scripted(200)
        assert deliver_until_settled(app, client, admin, kept)["status"] == "delivered"
        assert "Grace.Hopper@example.com" in {json.loads(sent.body)["Email"] for sent in school_server.received}


def test_a_value_no_key_opens_is_reported_by_id_and_fails_the_command(app, client, http_world):
    lead = client.post("/v1/leads", json=http_world.lead(), headers=http_world.publisher_headers).get_json()
    saved = {name: app.config[name] for name in ("ENCRYPTION_KEY", "ENCRYPTION_KEYS_OLD")}
    app.config.update(ENCRYPTION_KEY=Fernet.generate_key().decode(), ENCRYPTION_KEYS_OLD=())  # the old key forgotten
    try:
        result = keys_command(app, "rotate-encryption-key")
    finally:
        app.config.update(saved)
    assert result.exit_code == 1
    assert f"leads {lead['id']}" in result.output
    assert "Grace" not in result.output


def test_every_encrypted_column_is_sealed_again_by_the_rotation():
    from adserver.services.keys.encryption import SEALED

    encrypted = {(mapper.local_table.name, column.key) for mapper in Base.registry.mappers
                 for column in inspect_model(mapper.class_).columns
                 if column.key.endswith(("_enc", "_encrypted"))}  # fmt: skip
    assert encrypted == {(sealed.table.name, name) for sealed in SEALED for name in sealed.columns}


class TestSettings:
    PRODUCTION = {
        "DATABASE_URL": "postgresql://u@db/adserver",
        "REDIS_URL": "redis://cache:6379/0",
        "SECRET_KEY": "a-long-enough-secret-key",
        "ENCRYPTION_KEY": "W2q8pTqQ5v2r0Hk7v1rZ2o3QyJc2m1y0cVJrR3cXJtY=",
    }
    OLD_KEY = "y6Q0iZb6cHq4mE3J4Yp0Tq8dXw5kC1nR2sV7uA9bL0M="

    def test_old_keys_without_a_hash_key_stop_the_start(self, tmp_path):
        with pytest.raises(ConfigError, match="HASH_KEY"):
            load_settings({**self.PRODUCTION, "ENCRYPTION_KEYS_OLD": self.OLD_KEY, "INSTANCE_DIR": str(tmp_path)})

    def test_old_keys_and_the_hash_key_are_read(self, tmp_path):
        settings = load_settings({**self.PRODUCTION, "ENCRYPTION_KEYS_OLD": f" {self.OLD_KEY} ,",
                                  "HASH_KEY": self.OLD_KEY, "INSTANCE_DIR": str(tmp_path)})  # fmt: skip
        assert settings.encryption_keys_old == (self.OLD_KEY,)
        assert settings.hash_key == self.OLD_KEY

    def test_the_hash_key_is_the_encryption_key_until_it_is_set(self, tmp_path):
        settings = load_settings({**self.PRODUCTION, "INSTANCE_DIR": str(tmp_path)})
        assert settings.hash_key == self.PRODUCTION["ENCRYPTION_KEY"]
        assert settings.encryption_keys_old == ()

    def test_a_malformed_old_key_stops_the_start(self, tmp_path):
        with pytest.raises(ConfigError, match="ENCRYPTION_KEYS_OLD"):
            load_settings({**self.PRODUCTION, "ENCRYPTION_KEYS_OLD": "short", "HASH_KEY": self.OLD_KEY,
                           "INSTANCE_DIR": str(tmp_path)})  # fmt: skip
