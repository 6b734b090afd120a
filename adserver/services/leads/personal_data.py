"""The personal fields of a lead: sealed (encrypted) at intake, opened for its readers and its delivery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adserver.crypto import decrypt, encrypt_all, keyed_hash
from adserver.models import Lead
from adserver.schemas.leads import LeadIn


def profile_fields(lead: Lead) -> dict[str, Any]:
    """The visitor's submitted profile, personal fields decrypted."""
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
        email_hash=keyed_hash("email:" + data.email.casefold()),
        phone_hash=keyed_hash("phone:" + data.phone),
    )
