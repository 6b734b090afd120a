"""Issuing, listing and revoking API keys (operators' commands; the API issues keys too)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from adserver import clock
from adserver.auth import ROLES, clear_key_cache, create_api_key
from adserver.extensions import db
from adserver.models import ApiKey, Publisher, School


class KeyRequestError(ValueError):
    """The key asked for cannot be issued or found; the message says why."""


def issue_key(role: str, *, school_id: str | None = None, publisher_id: str | None = None,
              publishable: bool = False) -> tuple[ApiKey, str]:  # fmt: skip
    """Issue a key and return it with its secret (shown once; only its hash is stored). A school key
    names its school, a publisher key its publisher; only a publisher key may be publishable."""
    if role not in ROLES:
        raise KeyRequestError(f"role must be one of {', '.join(ROLES)}")
    if (role == "school") != (school_id is not None):
        raise KeyRequestError("a school key, and only a school key, names its school (--school-id)")
    if (role == "publisher") != (publisher_id is not None):
        raise KeyRequestError("a publisher key, and only a publisher key, names its publisher (--publisher-id)")
    if publishable and role != "publisher":
        raise KeyRequestError("only a publisher key can be publishable")
    if school_id is not None and db.session.get(School, school_id) is None:
        raise KeyRequestError(f"no school {school_id}")
    if publisher_id is not None and db.session.get(Publisher, publisher_id) is None:
        raise KeyRequestError(f"no publisher {publisher_id}")
    key, secret = create_api_key(role, kind="publishable" if publishable else "secret", school_id=school_id,
                                 publisher_id=publisher_id)  # fmt: skip
    db.session.commit()
    return key, secret


def list_keys(*, school_id: str | None = None, publisher_id: str | None = None,
              include_revoked: bool = False) -> Sequence[ApiKey]:  # fmt: skip
    """Keys, oldest first, optionally of one school or publisher; revoked ones only when asked."""
    query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if school_id is not None:
        query = query.where(ApiKey.school_id == school_id)
    if publisher_id is not None:
        query = query.where(ApiKey.publisher_id == publisher_id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return db.session.scalars(query).all()


def revoke_key(key_id: str) -> ApiKey:
    """Revoke a key: refused at once by this process and dashboard sessions, and by every other web
    process within its key cache's 30 seconds. Revoking a revoked key changes nothing."""
    key = db.session.get(ApiKey, key_id)
    if key is None:
        raise KeyRequestError(f"no key {key_id}")
    if key.revoked_at is None:
        key.revoked_at = clock.now()
        db.session.commit()
    clear_key_cache()
    return key
