"""The one place that signs and verifies tokens (click and lead tokens in URLs and forms).

Tokens are itsdangerous signatures keyed with SECRET_KEY, salted per purpose so
a token made for one use is never accepted for another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer


class InvalidToken(Exception):
    """The token was not made by this server for this purpose (tampered, truncated, foreign)."""


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    payload: Any
    issued_at: datetime
    age_s: float

    def expired(self, max_age_s: float) -> bool:
        return self.age_s > max_age_s


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    serializers: dict[str, URLSafeTimedSerializer] = current_app.extensions.setdefault("token_serializers", {})
    serializer = serializers.get(purpose)
    if serializer is None:
        serializer = URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"adserver.{purpose}")
        serializers[purpose] = serializer
    return serializer


def sign_token(purpose: str, payload: Any) -> str:
    """Sign a JSON-serialisable payload; keep it small, it travels in URLs."""
    return _serializer(purpose).dumps(payload)


def read_token(purpose: str, token: str) -> VerifiedToken:
    """Verify the signature and return the payload with its age; the caller decides what expiry means."""
    if not token or len(token) > 2048:
        raise InvalidToken
    try:
        payload, signed_at = _serializer(purpose).loads(token, return_timestamp=True)
    except BadSignature:
        raise InvalidToken from None
    issued_at = signed_at if signed_at.tzinfo else signed_at.replace(tzinfo=UTC)
    return VerifiedToken(payload, issued_at, (datetime.now(UTC) - issued_at).total_seconds())
