"""API keys: creation, hashing and resolving a request to a principal.

Keys are random secrets (``sk_...`` secret, ``pk_...`` publishable) stored only
as their SHA-256. Resolved keys are cached in-process for a short time so the
ad-serving path does not query the database on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from flask import current_app, request
from sqlalchemy import select

from adserver.api.limits import check_failed_authentication
from adserver.errors import ApiError
from adserver.extensions import db
from adserver.models import ApiKey, Publisher
from adserver.origins import require_allowed_origin

ROLES = ("admin", "school", "publisher")
_CACHE_TTL_S = 30.0
ADMIN_SETTING_KEY_ID = "env:ADMIN_API_KEY"  # the key id of the ADMIN_API_KEY setting, which has no row


@dataclass(frozen=True, slots=True)
class Principal:
    role: str
    key_id: str
    kind: str  # secret | publishable
    school_id: str | None = None
    publisher_id: str | None = None
    # For publishable keys: the publisher's domains, the only origins the key works from.
    allowed_domains: tuple[str, ...] = ()

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(
    role: str,
    *,
    kind: str = "secret",
    school_id: str | None = None,
    publisher_id: str | None = None,
    secret: str | None = None,
) -> tuple[ApiKey, str]:
    """Add a new key to the session and return it with its secret, which is never stored. The secret
    is random unless given (the demo page's publishable key is derived, see ``adserver.demo``)."""
    prefix = "pk" if kind == "publishable" else "sk"
    secret = secret or f"{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        key_hash=hash_key(secret),
        display_prefix=secret[:10],
        role=role,
        kind=kind,
        school_id=school_id,
        publisher_id=publisher_id,
    )
    db.session.add(key)
    return key, secret


_cache: dict[str, tuple[float, Principal | None]] = {}
_cache_lock = threading.Lock()


def _lookup(secret: str) -> Principal | None:
    admin_key = current_app.config.get("ADMIN_API_KEY")
    if admin_key and hmac.compare_digest(secret.encode(), admin_key.encode()):
        return Principal(role="admin", key_id=ADMIN_SETTING_KEY_ID, kind="secret")
    digest = hash_key(secret)
    now = time.monotonic()
    cached = _cache.get(digest)
    if cached and cached[0] > now:
        return cached[1]
    principal = principal_by_hash(digest)
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[digest] = (now + _CACHE_TTL_S, principal)
    return principal


def principal_by_hash(digest: str) -> Principal | None:
    """The principal of the key whose hash is ``digest``, read afresh (never cached): None when the
    key is unknown or revoked, or was ``ADMIN_API_KEY`` and that setting has changed since. For
    whoever must not keep the key itself, such as a dashboard session."""
    admin_key = current_app.config.get("ADMIN_API_KEY")
    if admin_key and hmac.compare_digest(digest, hash_key(admin_key)):
        return Principal(role="admin", key_id=ADMIN_SETTING_KEY_ID, kind="secret")
    row = db.session.execute(
        select(ApiKey).where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))
    ).scalar_one_or_none()
    if row is None:
        return None
    domains: tuple[str, ...] = ()
    if row.publisher_id is not None:
        publisher = db.session.get(Publisher, row.publisher_id)
        domains = tuple(publisher.domains) if publisher is not None else ()
    return Principal(row.role, row.id, row.kind, row.school_id, row.publisher_id, domains)


def clear_key_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _presented_key() -> str | None:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized", "Send the key as 'Authorization: Bearer <key>'.")
        return token.strip()
    return request.headers.get("X-Publisher-Key") or request.args.get("key")


def authenticate(roles: tuple[str, ...], *, allow_publishable: bool = False) -> Principal:
    """Resolve the request's key; 401 when missing or unknown (429 when its address has sent too many
    unknown keys), 403 when its role may not call this."""
    secret = _presented_key()
    if not secret:
        raise ApiError(401, "unauthorized", "An API key is required.")
    principal = _lookup(secret)
    if principal is None:
        check_failed_authentication()  # 429 once this address has sent too many unknown keys
        raise ApiError(401, "unauthorized", "Unknown or revoked API key.")
    if principal.kind == "publishable":
        if not allow_publishable:
            raise ApiError(403, "forbidden", "A publishable key cannot call this endpoint; use a secret key.")
        require_allowed_origin(principal.allowed_domains)
    if principal.role not in roles:
        raise ApiError(403, "forbidden", "This key's role may not call this endpoint.")
    return principal
