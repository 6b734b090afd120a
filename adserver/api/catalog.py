"""Catalog endpoints: schools, campaigns, ads, publishers, keys and the interest taxonomy."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from sqlalchemy import select

from adserver.api.endpoint import endpoint
from adserver.auth import Principal
from adserver.errors import ApiError
from adserver.extensions import db
from adserver.models import Ad, Campaign, Publisher, School
from adserver.pagination import paginate
from adserver.schemas.catalog import (
    AdIn,
    AdOut,
    CampaignIn,
    CampaignListQuery,
    CampaignOut,
    InterestList,
    InterestOut,
    KeyOut,
    PublisherCreatedOut,
    PublisherIn,
    PublisherOut,
    SchoolIn,
    SchoolListQuery,
    SchoolOut,
)
from adserver.schemas.common import Page, PageQuery
from adserver.services.catalog import campaigns, publishers, schools
from adserver.taxonomy import INTERESTS

bp = Blueprint("catalog", __name__)

ADMIN = ("admin",)
READERS = ("admin", "school")


def get_or_404(model: type[Any], object_id: str, what: str) -> Any:
    well_formed = len(object_id) <= 40 and object_id.isprintable()
    found = db.session.get(model, object_id) if well_formed else None
    if found is None:
        raise ApiError(404, "not_found", f"No such {what}.")
    return found


def _visible_school(principal: Principal, school_id: str) -> School:
    """A school key sees only its own school; anything else is a 404, never a hint it exists."""
    if principal.role == "school" and principal.school_id != school_id:
        raise ApiError(404, "not_found", "No such school.")
    school: School = get_or_404(School, school_id, "school")
    return school


def _visible_campaign(principal: Principal, campaign_id: str) -> Campaign:
    campaign: Campaign = get_or_404(Campaign, campaign_id, "campaign")
    if principal.role == "school" and principal.school_id != campaign.school_id:
        raise ApiError(404, "not_found", "No such campaign.")
    return campaign


# ---- interests -----------------------------------------------------------


@endpoint(bp, "GET", "/v1/interests", summary="The program interest taxonomy (CIP 2020)", roles=(),
          response=InterestList)  # fmt: skip
def list_interests() -> InterestList:
    """Public. Each interest is a slug tied to a CIP 2020 code."""
    return InterestList(data=[InterestOut.model_validate(interest) for interest in INTERESTS])


# ---- schools -------------------------------------------------------------


@endpoint(bp, "POST", "/v1/schools", summary="Create a school", roles=ADMIN, body=SchoolIn,
          response=SchoolOut, status=201, errors=(400, 401, 403, 422))  # fmt: skip
def create_school(principal: Principal, body: SchoolIn) -> SchoolOut:
    """The answer carries `delivery.secret`, the whsec_ signing secret, shown only here."""
    school, signing_secret = schools.create_school(body)
    return schools.school_out(school, signing_secret)


@endpoint(bp, "GET", "/v1/schools", summary="List schools", roles=READERS, query=SchoolListQuery,
          response=Page[SchoolOut], errors=(400, 401, 403, 422))  # fmt: skip
def list_schools(principal: Principal, query: SchoolListQuery) -> Page[SchoolOut]:
    stmt = select(School)
    if principal.role == "school":
        stmt = stmt.where(School.id == principal.school_id)
    rows, next_cursor = paginate(stmt, School.id, query.limit, query.cursor)
    return Page[SchoolOut](data=[schools.school_out(s) for s in rows], next_cursor=next_cursor)


@endpoint(bp, "GET", "/v1/schools/<school_id>", summary="Get a school", roles=READERS,
          response=SchoolOut, errors=(401, 403, 404))  # fmt: skip
def get_school(principal: Principal, school_id: str) -> SchoolOut:
    return schools.school_out(_visible_school(principal, school_id))


@endpoint(bp, "PATCH", "/v1/schools/<school_id>", summary="Update a school", roles=ADMIN, body=SchoolIn,
          partial=True, response=SchoolOut, errors=(400, 401, 403, 404, 422))  # fmt: skip
def update_school(principal: Principal, school_id: str, body: dict[str, Any]) -> SchoolOut:
    """Send only the fields to change. `campuses` replaces the campus list; `programs` entries
    with an `id` update that program, entries without one add a program."""
    school = get_or_404(School, school_id, "school")
    return schools.school_out(schools.update_school(school, body))


@endpoint(bp, "POST", "/v1/schools/<school_id>/keys", summary="Create a secret key for a school",
          roles=ADMIN, response=KeyOut, status=201, errors=(401, 403, 404))  # fmt: skip
def create_school_key(principal: Principal, school_id: str) -> KeyOut:
    """The key is shown once; only its hash is kept."""
    school = get_or_404(School, school_id, "school")
    key_id, secret = schools.issue_school_key(school)
    return KeyOut(id=key_id, secret_key=secret)


# ---- campaigns -----------------------------------------------------------


@endpoint(bp, "POST", "/v1/campaigns", summary="Create a campaign", roles=ADMIN, body=CampaignIn,
          response=CampaignOut, status=201, errors=(400, 401, 403, 422))  # fmt: skip
def create_campaign(principal: Principal, body: CampaignIn) -> CampaignOut:
    return campaigns.campaign_out(campaigns.create_campaign(body))


@endpoint(bp, "GET", "/v1/campaigns", summary="List campaigns", roles=READERS, query=CampaignListQuery,
          response=Page[CampaignOut], errors=(400, 401, 403, 422))  # fmt: skip
def list_campaigns(principal: Principal, query: CampaignListQuery) -> Page[CampaignOut]:
    stmt = select(Campaign)
    if principal.role == "school":
        stmt = stmt.where(Campaign.school_id == principal.school_id)
    if query.school_id:
        stmt = stmt.where(Campaign.school_id == query.school_id)
    if query.status:
        stmt = stmt.where(Campaign.status == query.status)
    rows, next_cursor = paginate(stmt, Campaign.id, query.limit, query.cursor)
    return Page[CampaignOut](data=[campaigns.campaign_out(c) for c in rows], next_cursor=next_cursor)


@endpoint(bp, "GET", "/v1/campaigns/<campaign_id>", summary="Get a campaign", roles=READERS,
          response=CampaignOut, errors=(401, 403, 404))  # fmt: skip
def get_campaign(principal: Principal, campaign_id: str) -> CampaignOut:
    return campaigns.campaign_out(_visible_campaign(principal, campaign_id))


@endpoint(bp, "PATCH", "/v1/campaigns/<campaign_id>", summary="Update a campaign", roles=ADMIN,
          body=CampaignIn, partial=True, response=CampaignOut, errors=(400, 401, 403, 404, 422))  # fmt: skip
def update_campaign(principal: Principal, campaign_id: str, body: dict[str, Any]) -> CampaignOut:
    """Send only what changes, e.g. `{"status": "paused"}`; nested objects merge field by field."""
    campaign = get_or_404(Campaign, campaign_id, "campaign")
    return campaigns.campaign_out(campaigns.update_campaign(campaign, body))


# ---- ads -----------------------------------------------------------------


@endpoint(bp, "POST", "/v1/campaigns/<campaign_id>/ads", summary="Create an ad", roles=ADMIN, body=AdIn,
          response=AdOut, status=201, errors=(400, 401, 403, 404, 422))  # fmt: skip
def create_ad(principal: Principal, campaign_id: str, body: AdIn) -> AdOut:
    campaign = get_or_404(Campaign, campaign_id, "campaign")
    return campaigns.ad_out(campaigns.create_ad(campaign, body))


@endpoint(bp, "GET", "/v1/campaigns/<campaign_id>/ads", summary="List a campaign's ads", roles=READERS,
          query=PageQuery, response=Page[AdOut], errors=(400, 401, 403, 404))  # fmt: skip
def list_ads(principal: Principal, campaign_id: str, query: PageQuery) -> Page[AdOut]:
    campaign = _visible_campaign(principal, campaign_id)
    stmt = select(Ad).where(Ad.campaign_id == campaign.id)
    rows, next_cursor = paginate(stmt, Ad.id, query.limit, query.cursor)
    return Page[AdOut](data=[campaigns.ad_out(ad) for ad in rows], next_cursor=next_cursor)


def _visible_ad(principal: Principal, campaign_id: str, ad_id: str) -> Ad:
    campaign = _visible_campaign(principal, campaign_id)
    ad: Ad = get_or_404(Ad, ad_id, "ad")
    if ad.campaign_id != campaign.id:
        raise ApiError(404, "not_found", "No such ad.")
    return ad


@endpoint(bp, "GET", "/v1/campaigns/<campaign_id>/ads/<ad_id>", summary="Get an ad", roles=READERS,
          response=AdOut, errors=(401, 403, 404))  # fmt: skip
def get_ad(principal: Principal, campaign_id: str, ad_id: str) -> AdOut:
    return campaigns.ad_out(_visible_ad(principal, campaign_id, ad_id))


@endpoint(bp, "PATCH", "/v1/campaigns/<campaign_id>/ads/<ad_id>", summary="Update an ad", roles=ADMIN,
          body=AdIn, partial=True, response=AdOut, errors=(400, 401, 403, 404, 422))  # fmt: skip
def update_ad(principal: Principal, campaign_id: str, ad_id: str, body: dict[str, Any]) -> AdOut:
    return campaigns.ad_out(campaigns.update_ad(_visible_ad(principal, campaign_id, ad_id), body))


# ---- publishers ----------------------------------------------------------


@endpoint(bp, "POST", "/v1/publishers", summary="Create a publisher", roles=ADMIN, body=PublisherIn,
          response=PublisherCreatedOut, status=201, errors=(400, 401, 403, 422))  # fmt: skip
def create_publisher(principal: Principal, body: PublisherIn) -> PublisherCreatedOut:
    """Returns a publishable key (`pk_`, for browsers on the listed domains) and a secret key
    (`sk_`, for servers); both are shown only here."""
    publisher, publishable, secret = publishers.create_publisher(body)
    return PublisherCreatedOut.model_validate(
        {**PublisherOut.model_validate(publisher).model_dump(), "publishable_key": publishable, "secret_key": secret}
    )


@endpoint(bp, "GET", "/v1/publishers", summary="List publishers", roles=("admin", "publisher"),
          query=PageQuery, response=Page[PublisherOut], errors=(400, 401, 403))  # fmt: skip
def list_publishers(principal: Principal, query: PageQuery) -> Page[PublisherOut]:
    stmt = select(Publisher)
    if principal.role == "publisher":
        stmt = stmt.where(Publisher.id == principal.publisher_id)
    rows, next_cursor = paginate(stmt, Publisher.id, query.limit, query.cursor)
    return Page[PublisherOut](data=[PublisherOut.model_validate(p) for p in rows], next_cursor=next_cursor)


@endpoint(bp, "GET", "/v1/publishers/<publisher_id>", summary="Get a publisher", roles=("admin", "publisher"),
          response=PublisherOut, errors=(401, 403, 404))  # fmt: skip
def get_publisher(principal: Principal, publisher_id: str) -> PublisherOut:
    if principal.role == "publisher" and principal.publisher_id != publisher_id:
        raise ApiError(404, "not_found", "No such publisher.")
    return PublisherOut.model_validate(get_or_404(Publisher, publisher_id, "publisher"))


@endpoint(bp, "PATCH", "/v1/publishers/<publisher_id>", summary="Update a publisher", roles=ADMIN,
          body=PublisherIn, partial=True, response=PublisherOut, errors=(400, 401, 403, 404, 422))  # fmt: skip
def update_publisher(principal: Principal, publisher_id: str, body: dict[str, Any]) -> PublisherOut:
    publisher = get_or_404(Publisher, publisher_id, "publisher")
    return PublisherOut.model_validate(publishers.update_publisher(publisher, body))
