"""Standard Webhooks requests to schools: the body (field mapping, JSON or form) and its signature.

Lead deliveries use it; the signature is ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``
keyed with the school's ``whsec_`` secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode


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


def _secret_bytes(secret: str) -> bytes:
    raw = secret.removeprefix("whsec_")
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The Standard Webhooks ``webhook-signature``: v1, base64 HMAC-SHA256 of "{id}.{timestamp}.{body}"."""
    digest = hmac.new(_secret_bytes(secret), f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()
