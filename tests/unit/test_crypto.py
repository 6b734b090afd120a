"""Personal data at rest: sealed so it cannot be read or changed without the key."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet

from adserver.crypto import decrypt, encrypt, encrypt_all, keyed_hash


def test_a_value_round_trips_and_never_appears_in_its_ciphertext(app: Any) -> None:
    with app.app_context():
        sealed = encrypt("Ada Lovelace <ada@example.com>")
        assert "Ada" not in sealed and "example" not in sealed
        assert decrypt(sealed) == "Ada Lovelace <ada@example.com>"
        assert [decrypt(value) for value in encrypt_all("Ada", "", "é✓")] == ["Ada", "", "é✓"]


def test_the_same_value_seals_differently_each_time(app: Any) -> None:
    with app.app_context():
        assert encrypt("85004") != encrypt("85004")


def test_a_changed_ciphertext_is_refused(app: Any) -> None:
    with app.app_context():
        sealed = encrypt("+16025550199")
        body = bytearray(sealed.encode())
        body[-5] = ord("A") if body[-5] != ord("A") else ord("B")
        with pytest.raises(InvalidTag):
            decrypt(body.decode())


def test_another_key_cannot_read_it(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with app.app_context():
        sealed = encrypt("Lovelace")
        monkeypatch.setitem(app.config, "ENCRYPTION_KEY", Fernet.generate_key().decode())
        with pytest.raises(InvalidTag):
            decrypt(sealed)


def test_values_sealed_in_the_earlier_fernet_format_still_decrypt(app: Any) -> None:
    with app.app_context():
        earlier = Fernet(app.config["ENCRYPTION_KEY"].encode()).encrypt(b"Augusta").decode()
        assert decrypt(earlier) == "Augusta"


def test_keyed_hashes_match_for_equal_values_only(app: Any) -> None:
    with app.app_context():
        assert keyed_hash("email:ada@example.com") == keyed_hash("email:ada@example.com")
        assert keyed_hash("email:ada@example.com") != keyed_hash("email:ada@example.org")
