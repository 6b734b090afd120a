"""The personal fields of a lead: sealed (encrypted) at intake, opened for its readers and its delivery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adserver.crypto import decrypt, encrypt_all, keyed_hash
from adserver.models import Lead
from adserver.schemas.leads import PERSONAL_FIELDS, LeadIn


def profile_fields(lead: Lead) -> dict[str, Any]:
    """The visitor's submitted profile, personal fields decrypted; all None once the lead is erased."""
    if lead.erased_at is not None:
        return dict.fromkeys(PERSONAL_FIELDS)
    return {
        "first_name": decrypt(lead.first_name_enc),
        "last_name": decrypt(lead.last_name_enc),
        "email": decrypt(lead.email_enc),
        "phone": decrypt(lead.phone_enc),
        "postal_code": decrypt(lead.postal_code_enc),
        "country": lead.country,
        "region": lead.region,
        "education_level": lead.education_level,
        "graduation_year": lead.graduation_year,
        "birth_year": lead.birth_year,
        "military": lead.military,
        "rn_license": lead.rn_license,
    }


def consent_ip(lead: Lead) -> str | None:
    """The IP the consent was given from; None once the lead is erased."""
    return decrypt(lead.consent_ip_enc) if lead.erased_at is None else None


# The columns of an erased lead: nothing left to decrypt, to match a person by, or that the school
# answered about them. Its ids, campaign, times, consent text and time, price and status stay.
ERASED_COLUMNS: dict[str, Any] = {
    "first_name_enc": "", "last_name_enc": "", "email_enc": "", "phone_enc": "", "postal_code_enc": "",
    "email_hash": "", "phone_hash": "", "country": "", "region": "", "education_level": "",
    "graduation_year": None, "birth_year": None, "military": False, "rn_license": False,
    "consent_ip_enc": "", "consent_user_agent": None, "consent_page_url": None,
    "rejection_reason": None, "return_reason": None,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class SealedProfile:
    """The lead's personal fields, encrypted, and the keyed hashes used to find duplicates."""

    first_name: str
    last_name: str
    email: str
    phone: str
    postal_code: str
    ip: str
    email_hash: str
    phone_hash: str


def seal_profile(data: LeadIn, postal_code: str, ip: str) -> SealedProfile:
    """Encrypt the personal fields (the postal code in its normalised form) and hash email and phone
    for duplicate checks."""
    first_name, last_name, email, phone, postal_code, sealed_ip = encrypt_all(
        data.first_name, data.last_name, data.email, data.phone, postal_code, ip
    )
    return SealedProfile(
        first_name=first_name,
        last_name=last_name,
        email=email,
        phone=phone,
        postal_code=postal_code,
        ip=sealed_ip,
        email_hash=email_hash(data.email),
        phone_hash=phone_hash(data.phone),
    )


def email_hash(email: str) -> str:
    """The keyed hash that finds a person by email: duplicates, opt-outs. ``email`` is validated
    (``schemas.leads.Email``); the hash ignores case."""
    return keyed_hash("email:" + email.casefold())


def phone_hash(phone: str) -> str:
    """The keyed hash that finds a person by phone; ``phone`` is in E.164 (``schemas.leads.Phone``)."""
    return keyed_hash("phone:" + phone)
