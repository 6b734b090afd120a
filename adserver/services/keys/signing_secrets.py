"""Rotating a school's ``whsec_`` signing secret without a gap: for ``overlap`` after the rotation,
requests to the school carry a signature under the old secret and one under the new (see
``services.leads.webhooks``), so the school can switch whenever it likes within that window."""

from __future__ import annotations

from datetime import timedelta

from adserver import clock
from adserver.crypto import encrypt
from adserver.extensions import db
from adserver.models import School
from adserver.services.keys.api_keys import KeyRequestError
from adserver.services.leads.webhooks import new_signing_secret


def rotate_school_secret(school_id: str, overlap: timedelta) -> str:
    """Give the school a new signing secret and return it (shown once; it is stored encrypted).
    The secret it replaces keeps signing, beside the new one, for ``overlap``."""
    school = db.session.get(School, school_id)
    if school is None:
        raise KeyRequestError(f"no school {school_id}")
    secret = new_signing_secret()
    school.delivery_secret_previous_encrypted = school.delivery_secret_encrypted if overlap else None
    school.delivery_secret_previous_until = clock.now() + overlap if overlap else None
    school.delivery_secret_encrypted = encrypt(secret)
    db.session.commit()
    return secret
