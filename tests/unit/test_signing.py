"""Tokens: signed once, verified for their purpose only, refused when changed in any way."""

from __future__ import annotations

from typing import Any

import pytest

from adserver.signing import InvalidToken, read_token, sign_token

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_a_token_carries_its_fields_and_signing_time(app: Any) -> None:
    with app.app_context():
        verified = read_token("click", sign_token("click", ("1", "imp_a", "")))
    assert verified.fields == ["1", "imp_a", ""]
    assert verified.issued_at.tzinfo is not None


def test_a_token_is_only_good_for_its_purpose(app: Any) -> None:
    with app.app_context():
        token = sign_token("lead", ("1", "imp_a"))
        with pytest.raises(InvalidToken):
            read_token("click", token)


def test_every_changed_character_is_refused(app: Any) -> None:
    with app.app_context():
        token = sign_token("click", ("1", "imp_a", "4500", "cpc"))
        for position in range(len(token)):
            # Half the alphabet away, so even the signature's last character (whose low bits base64
            # ignores) decodes differently.
            swapped = _ALPHABET[(_ALPHABET.index(token[position]) + 32) % 64] if token[position] in _ALPHABET else "A"
            with pytest.raises(InvalidToken):
                read_token("click", token[:position] + swapped + token[position + 1 :])
        for broken in ("", token[:-1], token + "x", "x" * 3000, "é" + token):
            with pytest.raises(InvalidToken):
                read_token("click", broken)


def test_fields_may_not_contain_the_separator(app: Any) -> None:
    with app.app_context(), pytest.raises(ValueError):
        sign_token("click", ("1", "imp.a"))
