"""Standard Webhooks requests to schools: the body (field mapping, JSON or form) and its signature.

Lead deliveries use it; the signature is ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``
keyed with the school's ``whsec_`` secret. For a while after the secret is rotated, the header
carries one signature under each secret, space-separated as the standard allows, so the school can
switch to the new secret at any moment of that window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from adserver.crypto import decrypt
from adserver.models import School


def map_fields(fields: dict[str, Any], field_map: dict[str, str]) -> dict[str, Any]:
    """Rename by the school's map (its name -> ours); fields it does not map keep their names."""
    mapped = {theirs: fields.get(ours) for theirs, ours in field_map.items()}
    renamed = set(field_map.values())
    for name, value in fields.items():
        if name not in renamed and name not in mapped:
            mapped[name] = value
    return mapped


def _form_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def encode_body(fields: dict[str, Any], body_format: str) -> tuple[str, str]:
    """The body and its content type."""
    if body_format == "form":
        return urlencode({k: _form_value(v) for k, v in fields.items()}), "application/x-www-form-urlencoded"
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False), "application/json"


def new_signing_secret() -> str:
    """A new ``whsec_`` secret: standard base64 of 32 random bytes after the prefix, as Standard Webhooks has it."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def signing_secrets(school: School, now: datetime) -> list[str]:
    """The secrets a request to the school is signed with: its own and, until the moment a rotation
    gave, the one that secret replaced."""
    found = [decrypt(school.delivery_secret_encrypted)]
    previous, until = school.delivery_secret_previous_encrypted, school.delivery_secret_previous_until
    if previous and until is not None and now < until:
        found.append(decrypt(previous))
    return found


def signature_header(secrets_in_use: Sequence[str], message_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header: a signature under each secret, space-separated."""
    return " ".join(sign(secret, message_id, timestamp, body) for secret in secrets_in_use)


def signed_headers(school: School, now: datetime, message_id: str, body: str, content_type: str) -> dict[str, str]:
    """The headers of a request to the school: the message's id (the same on every attempt, so the
    school can drop repeats), the time it was signed, and its signature under each secret in use."""
    timestamp = int(time.time())
    return {
        "Content-Type": content_type,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(signing_secrets(school, now), message_id, timestamp, body),
    }


def _secret_bytes(secret: str) -> bytes:
    raw = secret.removeprefix("whsec_")
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The Standard Webhooks ``webhook-signature``: v1, base64 HMAC-SHA256 of "{id}.{timestamp}.{body}"."""
    digest = hmac.new(_secret_bytes(secret), f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()
