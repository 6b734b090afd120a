"""Schools: create and change a school with its campuses, programs and lead delivery settings,
and issue its API keys.

Postal codes must resolve (each campus gets its coordinates and region); every change is
announced so campaign indexes rebuild.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from adserver.auth import create_api_key
from adserver.crypto import encrypt
from adserver.errors import validation_error
from adserver.extensions import db
from adserver.geo import InvalidPostalCode, resolve_postal_code
from adserver.models import Campus, Program, School
from adserver.schemas.catalog import CampusIn, SchoolIn, SchoolOut
from adserver.services.catalog.changes import notify_catalog_changed
from adserver.services.leads.webhooks import new_signing_secret
from adserver.validation import merge_patch, parse_body


def default_consent_text(school_name: str) -> str:
    return (
        f"By submitting, I agree that {school_name} may contact me about its programs by email, "
        "phone or text message at the number I provided, including by automated means. "
        "Consent is not required to enroll. Message and data rates may apply."
    )


def _build_campuses(campuses: Iterable[CampusIn]) -> list[Campus]:
    built, errors = [], {}
    for index, campus in enumerate(campuses):
        try:
            location = resolve_postal_code(campus.postal_code)
        except InvalidPostalCode:
            errors[f"campuses.{index}.postal_code"] = "unknown US ZIP or Canadian postal code"
            continue
        if campus.country and campus.country != location.country:
            errors[f"campuses.{index}.country"] = f"postal code {location.postal_code} is in {location.country}"
            continue
        built.append(
            Campus(
                name=campus.name,
                postal_code=location.postal_code,
                country=location.country,
                region=location.region,
                latitude=location.latitude,
                longitude=location.longitude,
            )
        )
    if errors:
        raise validation_error(errors)
    return built


def _apply_delivery(school: School, data: SchoolIn) -> None:
    delivery = data.delivery
    school.delivery_method = delivery.method
    school.delivery_url = delivery.url
    school.delivery_format = delivery.format
    school.delivery_field_map = dict(delivery.field_map)
    school.delivery_max_attempts = delivery.max_attempts
    school.delivery_timeout_s = delivery.timeout_s


def create_school(data: SchoolIn) -> tuple[School, str]:
    """Create a school with its campuses and programs; returns it with its new whsec_ signing secret."""
    signing_secret = new_signing_secret()
    school = School(
        name=data.name,
        website=data.website,
        logo_url=data.logo_url,
        timezone=data.timezone,
        consent_text=data.consent_text or default_consent_text(data.name),
        delivery_secret_encrypted=encrypt(signing_secret),
        campuses=_build_campuses(data.campuses),
        programs=[
            Program(name=p.name, interest=p.interest, degree_level=p.degree_level, modality=p.modality)
            for p in data.programs
        ],
    )
    _apply_delivery(school, data)
    db.session.add(school)
    db.session.commit()
    notify_catalog_changed()
    return school, signing_secret


def school_out(school: School, signing_secret: str | None = None) -> SchoolOut:
    return SchoolOut.model_validate(
        {
            "id": school.id,
            "name": school.name,
            "website": school.website,
            "logo_url": school.logo_url,
            "timezone": school.timezone,
            "consent_text": school.consent_text,
            "campuses": school.campuses,
            "programs": school.programs,
            "delivery": {
                "method": school.delivery_method,
                "url": school.delivery_url,
                "format": school.delivery_format,
                "field_map": school.delivery_field_map,
                "max_attempts": school.delivery_max_attempts,
                "timeout_s": school.delivery_timeout_s,
                "secret": signing_secret,
            },
            "created_at": school.created_at,
            "updated_at": school.updated_at,
        }
    )


def _school_as_input(school: School) -> dict[str, Any]:
    out = school_out(school).model_dump(mode="json")
    delivery = {k: v for k, v in out["delivery"].items() if k != "secret"}
    return {
        "name": out["name"],
        "website": out["website"],
        "logo_url": out["logo_url"],
        "timezone": out["timezone"],
        "consent_text": out["consent_text"],
        "delivery": delivery,
    }


def update_school(school: School, patch: dict[str, Any]) -> School:
    """Partial update. ``campuses`` replaces the campus list; ``programs`` entries with an
    ``id`` update that program and entries without one add a program (none is deleted,
    since campaigns and leads refer to them)."""
    current = _school_as_input(school)
    merged = merge_patch(current, {k: v for k, v in patch.items() if k not in ("campuses", "programs")})
    merged["campuses"] = patch.get("campuses", [])
    merged["programs"] = patch.get("programs", [])
    data = parse_body(SchoolIn, merged)

    school.name = data.name
    school.website = data.website
    school.logo_url = data.logo_url
    school.timezone = data.timezone
    school.consent_text = data.consent_text or default_consent_text(data.name)
    _apply_delivery(school, data)
    if "campuses" in patch:
        school.campuses = _build_campuses(data.campuses)
    if "programs" in patch:
        existing = {program.id: program for program in school.programs}
        errors = {}
        for index, item in enumerate(data.programs):
            if item.id is None:
                school.programs.append(
                    Program(
                        name=item.name, interest=item.interest, degree_level=item.degree_level, modality=item.modality
                    )
                )
            elif item.id in existing:
                program = existing[item.id]
                program.name, program.interest = item.name, item.interest
                program.degree_level, program.modality = item.degree_level, item.modality
            else:
                errors[f"programs.{index}.id"] = "no such program at this school"
        if errors:
            db.session.rollback()
            raise validation_error(errors)
    db.session.commit()
    notify_catalog_changed()
    return school


def issue_school_key(school: School) -> tuple[str, str]:
    key, secret = create_api_key("school", school_id=school.id)
    db.session.commit()
    return key.id, secret
