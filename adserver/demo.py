"""The demo catalog: five fictional schools shaped like the ads on a career-article page, and the
demo publisher whose widget the demo article shows."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select

from adserver.auth import create_api_key, hash_key
from adserver.extensions import db
from adserver.models import ApiKey, Publisher, School
from adserver.schemas.catalog import AdIn, CampaignIn, PublisherIn, SchoolIn
from adserver.services.catalog import campaigns, publishers, schools
from adserver.validation import parse_model

EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

DEMO_SCHOOLS: list[dict[str, Any]] = [
    {
        "school": {
            "name": "Northbridge Online University",
            "website": "https://northbridge-online.example",
            "logo_url": "https://northbridge-online.example/logo.png",
            "timezone": "America/Phoenix",
            "campuses": [{"name": "Administrative Center, Phoenix", "postal_code": "85004", "country": "US"}],
            "programs": [
                {"name": "BS in Health Care Administration", "interest": "healthcare-administration",
                 "degree_level": "bachelor", "modality": "online"},
                {"name": "BS in Health Information Management", "interest": "health-information-technology",
                 "degree_level": "bachelor", "modality": "online"},
                {"name": "Master of Business Administration", "interest": "business-administration",
                 "degree_level": "master", "modality": "online"},
                {"name": "AS in Medical Office Administration", "interest": "medical-office-management",
                 "degree_level": "associate", "modality": "online"},
            ],
        },
        "campaign": {"name": "Online health and business degrees", "pricing": {"model": "cpl", "bid_cents": 4500},
                     "budget": {"daily_cents": 150000}, "caps": {"leads_per_day": 40},
                     "targeting": {"countries": ["US"]},
                     "eligibility": {"min_education": "high_school", "min_age": 18}},
        "ad": {"headline": "Ranked among the best online bachelor's programs",
               "bullets": ["Try your first three classes before paying tuition",
                           "Average class size of 18 students", "Six start dates a year"],
               "tags": ["Online Courses", "Financial Aid", "Transferable Credits"],
               "badge": "Good for Working Adults",
               "landing_url": "https://northbridge-online.example/health-care-administration"},
    },
    {
        "school": {
            "name": "Hollis Career Institute",
            "website": "https://hollis-institute.example",
            "logo_url": "https://hollis-institute.example/logo.png",
            "timezone": "America/New_York",
            "campuses": [
                {"name": "Tampa", "postal_code": "33614", "country": "US"},
                {"name": "Houston", "postal_code": "77002", "country": "US"},
                {"name": "Toronto", "postal_code": "M5V 3L9", "country": "CA"},
            ],
            "programs": [
                {"name": "Medical Office Management Diploma", "interest": "medical-office-management",
                 "degree_level": "certificate", "modality": "campus"},
                {"name": "Medical Billing and Coding Certificate", "interest": "medical-billing-coding",
                 "degree_level": "certificate", "modality": "hybrid"},
                {"name": "AAS in Health Information Technology", "interest": "health-information-technology",
                 "degree_level": "associate", "modality": "hybrid"},
                {"name": "AAS in Healthcare Administration", "interest": "healthcare-administration",
                 "degree_level": "associate", "modality": "campus"},
            ],
        },
        "campaign": {"name": "Campus programs near Tampa, Houston and Toronto",
                     "pricing": {"model": "cpc", "bid_cents": 350},
                     "budget": {"daily_cents": 20000}, "targeting": {"radius_miles": 60},
                     "eligibility": {"min_education": "high_school", "min_age": 17}},
        "ad": {"headline": "Hands-on health care training since 1940",
               "bullets": ["Career services for every graduate", "Day and evening classes",
                           "Campuses in Tampa, Houston and Toronto"],
               "tags": ["Financial Aid", "Flexible Scheduling"],
               "badge": None,
               "landing_url": "https://hollis-institute.example/medical-office"},
    },
    {
        "school": {
            "name": "Meridian College of Nursing",
            "website": "https://meridian-nursing.example",
            "logo_url": "https://meridian-nursing.example/logo.png",
            "timezone": "America/Chicago",
            "campuses": [{"name": "Chicago", "postal_code": "60611", "country": "US"}],
            "programs": [
                {"name": "RN to BSN", "interest": "registered-nursing", "degree_level": "bachelor",
                 "modality": "online"},
                {"name": "MSN in Nursing Administration", "interest": "registered-nursing",
                 "degree_level": "master", "modality": "online"},
                {"name": "MSN in Health Care Administration", "interest": "healthcare-administration",
                 "degree_level": "master", "modality": "online"},
            ],
        },
        "campaign": {"name": "RN-to-BSN and MSN for licensed nurses", "pricing": {"model": "cpl", "bid_cents": 6500},
                     "budget": {"daily_cents": 130000}, "caps": {"leads_per_day": 20, "leads_per_month": 400},
                     "targeting": {"countries": ["US"]},
                     "eligibility": {"min_education": "associate", "requires_rn_license": True}},
        "ad": {"headline": "Finish your BSN in as few as 12 months",
               "bullets": ["For registered nurses with an active license", "No clinical placements to arrange",
                           "Transfer up to 90 credits"],
               "tags": ["Online Courses", "Transferable Credits", "Accelerated Programs"],
               "badge": "Good for Working Adults",
               "landing_url": "https://meridian-nursing.example/rn-to-bsn"},
    },
    {
        "school": {
            "name": "Keystone Distance Learning Academy",
            "website": "https://keystone-distance.example",
            "logo_url": "https://keystone-distance.example/logo.png",
            "timezone": "America/New_York",
            "campuses": [{"name": "Scranton office", "postal_code": "18503", "country": "US"}],
            "programs": [
                {"name": "Medical Billing and Coding Career Diploma", "interest": "medical-billing-coding",
                 "degree_level": "certificate", "modality": "online"},
                {"name": "Medical Office Assistant Certificate", "interest": "medical-office-management",
                 "degree_level": "certificate", "modality": "online"},
                {"name": "Associate in Business Management", "interest": "business-administration",
                 "degree_level": "associate", "modality": "online"},
            ],
        },
        "campaign": {"name": "Self-paced certificates", "pricing": {"model": "cpl", "bid_cents": 2800},
                     "budget": {"daily_cents": 60000}, "caps": {"leads_per_day": 30},
                     "targeting": {"countries": ["US", "CA"]},
                     "eligibility": {"min_age": 16}},
        "ad": {"headline": "Study at your own pace, from home",
               "bullets": ["Start any day of the year", "Low monthly payments", "Finish in as little as 5 months"],
               "tags": ["Online Courses", "Flexible Scheduling"],
               "badge": "Good for Working Adults",
               "landing_url": "https://keystone-distance.example/medical-billing"},
    },
    {
        "school": {
            "name": "Summit Ridge Career University",
            "website": "https://summit-ridge.example",
            "logo_url": "https://summit-ridge.example/logo.png",
            "timezone": "America/Denver",
            "campuses": [
                {"name": "Fayetteville", "postal_code": "28301", "country": "US"},
                {"name": "Killeen", "postal_code": "76541", "country": "US"},
                {"name": "Colorado Springs", "postal_code": "80903", "country": "US"},
            ],
            "programs": [
                {"name": "BS in Healthcare Management (Fast Track)", "interest": "healthcare-administration",
                 "degree_level": "bachelor", "modality": "hybrid"},
                {"name": "BBA in Business Administration", "interest": "business-administration",
                 "degree_level": "bachelor", "modality": "online"},
                {"name": "Diploma in Medical Billing and Coding", "interest": "medical-billing-coding",
                 "degree_level": "certificate", "modality": "campus"},
            ],
        },
        "campaign": {"name": "Fast-track degrees near military bases", "pricing": {"model": "cpc", "bid_cents": 420},
                     "budget": {"daily_cents": 25000, "total_cents": 2000000},
                     "targeting": {"countries": ["US"]},
                     "eligibility": {"min_education": "high_school"}},
        "ad": {"headline": "Earn your degree on a fast-track schedule",
               "bullets": ["Military tuition discounts", "Credit for military training", "Classes start monthly"],
               "tags": ["Accelerated Programs", "Financial Aid", "Transferable Credits"],
               "badge": "Military Friendly",
               "landing_url": "https://summit-ridge.example/healthcare-management"},
    },
]  # fmt: skip

DEMO_PUBLISHER = {"name": "Career Guides", "domains": ["careerguides.example", "localhost", "127.0.0.1"]}


def seed_demo_catalog() -> Iterator[str]:
    """Create what is missing of the demo catalog, matched by name; yields one line per action."""
    for entry in DEMO_SCHOOLS:
        name = entry["school"]["name"]
        if db.session.scalar(select(School.id).where(School.name == name)):
            yield f"school exists: {name}"
            continue
        school, _ = schools.create_school(parse_model(SchoolIn, entry["school"]))
        campaign_data = {
            "school_id": school.id,
            "status": "active",
            "flight": {"start": "2026-01-01", "days": EVERY_DAY, "hours": [0, 24]},
            "program_ids": [program.id for program in school.programs],
            **entry["campaign"],
        }
        campaign = campaigns.create_campaign(parse_model(CampaignIn, campaign_data))
        campaigns.create_ad(campaign, parse_model(AdIn, entry["ad"]))
        yield f"school created: {name} ({school.id})"

    publisher = db.session.scalars(select(Publisher).where(Publisher.name == DEMO_PUBLISHER["name"])).first()
    if publisher is not None:
        yield f"publisher exists: {publisher.name}"
    else:
        publisher, publishable, secret = publishers.create_publisher(parse_model(PublisherIn, DEMO_PUBLISHER))
        yield f"publisher created: {publisher.name} ({publisher.id})"
        yield f"  publishable key: {publishable}"
        yield f"  secret key:      {secret}"
    yield from _ready_demo_page(publisher)


def demo_page_key() -> str:
    """The publishable key the demo article embeds.

    Keys are stored only as hashes, so a page cannot look one up. This one is derived from
    SECRET_KEY instead: every web process (and the seed) computes the same key without storing
    it anywhere, it survives restarts, and it changes when SECRET_KEY is rotated (the next
    ``seed-demo`` registers the new one). A publishable key is public by design: it appears in
    the page's source and works only from the demo publisher's domains.
    """
    secret = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(secret, b"adserver demo page publishable key", hashlib.sha256).digest()
    return "pk_demo_" + base64.urlsafe_b64encode(digest[:24]).decode()


def _ready_demo_page(publisher: Publisher) -> Iterator[str]:
    """Register the demo page's key, and let the demo publisher's widget run on this server's own host."""
    host = (urlsplit(current_app.config["PUBLIC_BASE_URL"]).hostname or "").lower()
    if host and ":" not in host and host not in publisher.domains:
        publishers.update_publisher(publisher, {"domains": [*publisher.domains, host]})
        yield f"  demo publisher domains: {', '.join(publisher.domains)}"
    key = demo_page_key()
    if db.session.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(key))) is None:
        create_api_key("publisher", kind="publishable", publisher_id=publisher.id, secret=key)
        db.session.commit()
        yield "  demo page key registered"


def demo_page_key_if_seeded() -> str | None:
    """The demo page's key when ``seed-demo`` has registered it for the demo publisher, else None."""
    key = demo_page_key()
    found = db.session.execute(
        select(ApiKey.id)
        .join(Publisher, Publisher.id == ApiKey.publisher_id)
        .where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None), Publisher.name == DEMO_PUBLISHER["name"])
    ).first()
    return key if found is not None else None
