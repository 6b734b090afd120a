"""Catalog use cases: create and change schools, campaigns, ads and publishers.

Each function validates what the schemas cannot see alone (postal codes that
must resolve, ids that must exist and belong together), owns its transaction,
and announces the change so campaign indexes rebuild.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from adserver.auth import clear_key_cache, create_api_key
from adserver.crypto import encrypt
from adserver.errors import ApiError, validation_error
from adserver.extensions import db
from adserver.geo import InvalidPostalCode, resolve_postal_code
from adserver.models import Ad, Campaign, Campus, Program, Publisher, School
from adserver.schemas.catalog import (
    AdIn,
    AdOut,
    CampaignIn,
    CampaignOut,
    CampusIn,
    PublisherIn,
    SchoolIn,
    SchoolOut,
)
from adserver.services.catalog_events import notify_catalog_changed
from adserver.validation import parse_model


def default_consent_text(school_name: str) -> str:
    return (
        f"By submitting, I agree that {school_name} may contact me about its programs by email, "
        "phone or text message at the number I provided, including by automated means. "
        "Consent is not required to enroll. Message and data rates may apply."
    )


def merge_patch(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Objects merge key by key; everything else (lists included) is replaced."""
    merged = dict(current)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = value
    return merged


# ---- schools -------------------------------------------------------------


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
    # Standard Webhooks secrets are standard base64 of random bytes after the prefix.
    signing_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
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
    data = parse_model(SchoolIn, merged)

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


# ---- campaigns -----------------------------------------------------------


def _check_campaign_references(data: CampaignIn) -> School:
    errors: dict[str, str] = {}
    school = db.session.get(School, data.school_id)
    if school is None:
        raise validation_error({"school_id": "no such school"})
    school_programs = {program.id for program in school.programs}
    for index, program_id in enumerate(data.program_ids):
        if program_id not in school_programs:
            errors[f"program_ids.{index}"] = "no such program at this school"
    listed = set(data.publishers.allow) | set(data.publishers.deny)
    if listed:
        known = set(db.session.scalars(select(Publisher.id).where(Publisher.id.in_(listed))))
        for name in ("allow", "deny"):
            for index, publisher_id in enumerate(getattr(data.publishers, name)):
                if publisher_id not in known:
                    errors[f"publishers.{name}.{index}"] = "no such publisher"
    if errors:
        raise validation_error(errors)
    return school


def _apply_campaign(campaign: Campaign, data: CampaignIn, school: School) -> None:
    campaign.school_id = school.id
    campaign.name = data.name
    campaign.status = data.status
    campaign.pricing_model = data.pricing.model
    campaign.bid_cents = data.pricing.bid_cents
    campaign.daily_budget_cents = data.budget.daily_cents
    campaign.total_budget_cents = data.budget.total_cents
    campaign.leads_per_day = data.caps.leads_per_day
    campaign.leads_per_month = data.caps.leads_per_month
    campaign.flight_start = data.flight.start
    campaign.flight_end = data.flight.end
    campaign.flight_days = list(data.flight.days)
    campaign.flight_hour_start, campaign.flight_hour_end = data.flight.hours
    campaign.targeting = data.targeting.model_dump(mode="json")
    campaign.eligibility = data.eligibility.model_dump(mode="json")
    campaign.publishers_allow = list(data.publishers.allow)
    campaign.publishers_deny = list(data.publishers.deny)
    campaign.impressions_per_day = data.frequency_cap.impressions_per_day
    by_id = {program.id: program for program in school.programs}
    campaign.programs = [by_id[program_id] for program_id in dict.fromkeys(data.program_ids)]


def create_campaign(data: CampaignIn) -> Campaign:
    school = _check_campaign_references(data)
    campaign = Campaign()
    _apply_campaign(campaign, data, school)
    db.session.add(campaign)
    db.session.commit()
    notify_catalog_changed()
    return campaign


def campaign_out(campaign: Campaign) -> CampaignOut:
    return CampaignOut.model_validate(
        {
            "id": campaign.id,
            "school_id": campaign.school_id,
            "name": campaign.name,
            "status": campaign.status,
            "pricing": {"model": campaign.pricing_model, "bid_cents": campaign.bid_cents},
            "budget": {"daily_cents": campaign.daily_budget_cents, "total_cents": campaign.total_budget_cents},
            "caps": {"leads_per_day": campaign.leads_per_day, "leads_per_month": campaign.leads_per_month},
            "flight": {
                "start": campaign.flight_start,
                "end": campaign.flight_end,
                "days": campaign.flight_days,
                "hours": (campaign.flight_hour_start, campaign.flight_hour_end),
            },
            "targeting": campaign.targeting,
            "eligibility": campaign.eligibility,
            "publishers": {"allow": campaign.publishers_allow, "deny": campaign.publishers_deny},
            "frequency_cap": {"impressions_per_day": campaign.impressions_per_day},
            "program_ids": [program.id for program in campaign.programs],
            "created_at": campaign.created_at,
            "updated_at": campaign.updated_at,
        }
    )


def update_campaign(campaign: Campaign, patch: dict[str, Any]) -> Campaign:
    """Partial update: nested objects merge field by field, lists are replaced."""
    if "school_id" in patch and patch["school_id"] != campaign.school_id:
        raise validation_error({"school_id": "a campaign cannot move to another school"})
    current = campaign_out(campaign).model_dump(mode="json")
    for server_owned in ("id", "created_at", "updated_at"):
        current.pop(server_owned)
    data = parse_model(CampaignIn, merge_patch(current, patch))
    school = _check_campaign_references(data)
    _apply_campaign(campaign, data, school)
    db.session.commit()
    notify_catalog_changed()
    return campaign


# ---- ads -----------------------------------------------------------------


def create_ad(campaign: Campaign, data: AdIn) -> Ad:
    ad = Ad(campaign_id=campaign.id, **data.model_dump())
    db.session.add(ad)
    db.session.commit()
    notify_catalog_changed()
    return ad


def ad_out(ad: Ad) -> AdOut:
    return AdOut.model_validate(ad)


def update_ad(ad: Ad, patch: dict[str, Any]) -> Ad:
    current = ad_out(ad).model_dump(mode="json")
    for server_owned in ("id", "campaign_id", "created_at", "updated_at"):
        current.pop(server_owned)
    data = parse_model(AdIn, merge_patch(current, patch))
    for name, value in data.model_dump().items():
        setattr(ad, name, value)
    db.session.commit()
    notify_catalog_changed()
    return ad


# ---- publishers ----------------------------------------------------------


def create_publisher(data: PublisherIn) -> tuple[Publisher, str, str]:
    """Create a publisher with a publishable (browser) key and a secret (server) key."""
    publisher = Publisher(name=data.name, domains=data.domains)
    db.session.add(publisher)
    db.session.flush()
    _, publishable = create_api_key("publisher", kind="publishable", publisher_id=publisher.id)
    _, secret = create_api_key("publisher", publisher_id=publisher.id)
    db.session.commit()
    notify_catalog_changed()
    return publisher, publishable, secret


def update_publisher(publisher: Publisher, patch: dict[str, Any]) -> Publisher:
    current = {"name": publisher.name, "domains": publisher.domains}
    data = parse_model(PublisherIn, merge_patch(current, patch))
    publisher.name, publisher.domains = data.name, data.domains
    db.session.commit()
    clear_key_cache()
    notify_catalog_changed()
    return publisher


def get_or_404(model: type[Any], object_id: str, what: str) -> Any:
    well_formed = len(object_id) <= 40 and object_id.isprintable()
    found = db.session.get(model, object_id) if well_formed else None
    if found is None:
        raise ApiError(404, "not_found", f"No such {what}.")
    return found
