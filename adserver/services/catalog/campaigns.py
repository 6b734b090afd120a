"""Campaigns and their ads: create and change them, checking that the programs and publishers
they name exist and belong together; every change is announced so campaign indexes rebuild."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from adserver.errors import validation_error
from adserver.extensions import db
from adserver.models import Ad, Campaign, Publisher, School
from adserver.schemas.catalog import AdIn, AdOut, CampaignIn, CampaignOut
from adserver.services.catalog.changes import notify_catalog_changed
from adserver.validation import merge_patch, parse_body


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
    data = parse_body(CampaignIn, merge_patch(current, patch))
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
    data = parse_body(AdIn, merge_patch(current, patch))
    for name, value in data.model_dump().items():
        setattr(ad, name, value)
    db.session.commit()
    notify_catalog_changed()
    return ad
