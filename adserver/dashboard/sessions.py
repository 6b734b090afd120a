"""Dashboard sign-in: Flask's signed session cookie, opened and saved only on the dashboard's paths.

The API takes keys, not cookies, and stays stateless: any other path gets a null session and no
``Set-Cookie``. The cookie never holds the key: it holds the key's id and the id of a sign-in
record kept in Redis, which holds the key's hash. Every request reads the key afresh by that
hash, so revoking a key signs its sessions out at once; sign-out deletes the record, so a copy of
the cookie is worth nothing afterwards.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import Flask, Request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from adserver.auth import Principal, hash_key, principal_by_hash
from adserver.extensions import redis_client

PATH = "/dashboard"
# How long a sign-in lasts, whatever happens in between.
SIGN_IN_LIFETIME = timedelta(hours=12)
DASHBOARD_ROLES = ("admin", "school")


def is_dashboard_path(path: str) -> bool:
    return path == PATH or path.startswith(PATH + "/")


class DashboardOnlySessions(SecureCookieSessionInterface):
    """Signed cookie sessions for the dashboard's paths; none anywhere else."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not is_dashboard_path(request.path):
            return None  # Flask substitutes a null session: it refuses writes and is never saved
        return super().open_session(app, request)


def session_settings(public_base_url: str) -> dict[str, object]:
    """Flask's cookie settings: scoped to the dashboard's path, out of scripts' reach, not sent by
    cross-site requests other than links, and only over https when the service is served so."""
    return {
        "SESSION_COOKIE_NAME": "adserver_dashboard",
        "SESSION_COOKIE_PATH": PATH,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": public_base_url.startswith("https://"),
        # Also the oldest signature a cookie may carry.
        "PERMANENT_SESSION_LIFETIME": SIGN_IN_LIFETIME,
    }


UNKNOWN_KEY = (401, "That key is unknown or revoked. Paste an admin or school secret key (sk_...).")


def _record_key(sign_in_id: str) -> str:
    return f"dashboard:sign-in:{sign_in_id}"


def _refusal(principal: Principal) -> tuple[int, str] | None:
    """Why this key may not sign in (a status and words for the sign-in form); None when it may."""
    if principal.kind != "secret":
        return 403, "A publishable key (pk_...) cannot sign in. Paste an admin or school secret key (sk_...)."
    if principal.role not in DASHBOARD_ROLES:
        return 403, "Publisher keys cannot sign in to the dashboard; publishers read their figures in GET /v1/reports."
    return None


def sign_in(key: str) -> tuple[int, str] | None:
    """Sign this browser in with a pasted key; None when signed in, else why the key was refused."""
    digest = hash_key(key)
    principal = principal_by_hash(digest)
    if principal is None:
        return UNKNOWN_KEY
    refused = _refusal(principal)
    if refused is not None:
        return refused
    sign_in_id = secrets.token_urlsafe(24)
    redis_client.client.set(_record_key(sign_in_id), digest, ex=SIGN_IN_LIFETIME)
    session.clear()  # nothing from before the sign-in (its CSRF token included) carries over
    session.update({"key_id": principal.key_id, "sign_in": sign_in_id})
    return None


def signed_in_principal() -> Principal | None:
    """The principal this browser signed in as, if its sign-in and its key are both still valid."""
    key_id, sign_in_id = session.get("key_id"), session.get("sign_in")
    if not isinstance(key_id, str) or not isinstance(sign_in_id, str):
        return None
    digest = redis_client.client.get(_record_key(sign_in_id))
    if not isinstance(digest, bytes):
        return None  # signed out, or the sign-in has lapsed
    principal = principal_by_hash(digest.decode())
    if principal is None or principal.key_id != key_id:
        return None
    return principal


def sign_out() -> None:
    sign_in_id = session.get("sign_in")
    if isinstance(sign_in_id, str):
        redis_client.client.delete(_record_key(sign_in_id))
    session.clear()
