"""The one place that signs and verifies tokens (click and lead tokens in URLs and forms).

A token is a short list of text fields joined with dots, then the signing time and an
HMAC-SHA256 signature (itsdangerous ``TimestampSigner``) under a key derived from
SECRET_KEY for each purpose, so a token made for one use is never accepted for another.
Fields must not contain dots; ids and numbers never do.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app
from itsdangerous import BadSignature, TimestampSigner

_SEPARATOR = "."


class InvalidToken(Exception):
    """The token was not made by this server for this purpose (tampered, truncated, foreign)."""


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    fields: list[str]
    issued_at: datetime


def _signer(purpose: str) -> TimestampSigner:
    signers: dict[str, TimestampSigner] = current_app.extensions.setdefault("token_signers", {})
    signer = signers.get(purpose)
    if signer is None:
        # The purpose's key is derived once here (HMAC of the purpose under SECRET_KEY), not per token.
        secret = str(current_app.config["SECRET_KEY"]).encode()
        key = hmac.new(secret, f"adserver.{purpose}".encode(), hashlib.sha256).digest()
        signer = signers[purpose] = TimestampSigner(key, key_derivation="none", digest_method=hashlib.sha256)
    return signer


def sign_token(purpose: str, fields: Sequence[str]) -> str:
    """Sign a few dot-free text fields; keep them short, the token travels in URLs."""
    if any(_SEPARATOR in field for field in fields):
        raise ValueError("token fields must not contain dots")
    return _signer(purpose).sign(_SEPARATOR.join(fields)).decode()


def read_token(purpose: str, token: str) -> VerifiedToken:
    """Verify the signature and return the fields with the signing time; the caller decides
    what an old token means."""
    if not token or len(token) > 2048:
        raise InvalidToken
    try:
        value, signed_at = _signer(purpose).unsign(token, return_timestamp=True)
    except (BadSignature, UnicodeError):
        raise InvalidToken from None
    issued_at = signed_at if signed_at.tzinfo else signed_at.replace(tzinfo=UTC)
    return VerifiedToken(value.decode().split(_SEPARATOR), issued_at)
