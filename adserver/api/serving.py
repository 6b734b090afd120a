"""Serving endpoints: ads for a visitor, the explanation of a decision, and click tracking."""

from __future__ import annotations

import time
from typing import Any

import orjson
from flask import Blueprint, Response, g, request

from adserver.api import limits
from adserver.api.endpoint import endpoint
from adserver.auth import Principal
from adserver.errors import ApiError
from adserver.geo import InvalidPostalCode, Location, resolve_postal_code
from adserver.ids import new_id
from adserver.metrics import counted
from adserver.schemas.serving import (
    AdsQuery,
    AdsResponse,
    ExplainedCampaignOut,
    ExplainQuery,
    ExplainResponse,
    LocationOut,
)
from adserver.services.serving import clicks, decisions
from adserver.services.serving.bots import is_declared_bot, is_prefetch
from adserver.services.serving.decisions import AdRequest, ServedAd
from adserver.services.serving.entries import AdEntry, CampaignEntry, EligibilityEntry, ProgramEntry
from adserver.services.serving.index import current_index

bp = Blueprint("serving", __name__)


def _location(query: AdsQuery) -> Location:
    try:
        return resolve_postal_code(query.raw_postal_code)
    except InvalidPostalCode:
        raise ApiError(422, "invalid_postal_code", "Please enter a valid US or Canada ZIP/postal code.") from None


def _request_id() -> str:
    request_id: str = g.get("request_id") or ""
    # Impressions keep the request id; a longer client-supplied one is replaced by our own.
    return request_id if 0 < len(request_id) <= 40 else new_id("req")


def visitor_user_agent(principal: Principal, query: AdsQuery) -> str:
    """Whose user agent decides whether an impression is a bot's: the visitor's, which a publisher's
    server passes as ``user_agent``; a browser's own otherwise (a publishable key cannot speak for
    anyone else)."""
    if principal.kind == "secret" and query.user_agent is not None:
        return query.user_agent
    return request.headers.get("User-Agent", "")


def _ad_request(principal: Principal, query: AdsQuery, location: Location, publisher_id: str | None) -> AdRequest:
    return AdRequest(
        location=location,
        interest=query.interest,
        degree_level=query.degree_level,
        modality=query.modality,
        limit=query.limit,
        visitor_id=query.visitor_id,
        publisher_id=publisher_id,
        is_bot=is_declared_bot(visitor_user_agent(principal, query)),
        request_id=_request_id(),
    )


def _location_out(location: Location) -> LocationOut:
    return LocationOut(postal_code=location.postal_code, country=location.country, region=location.region)


def _ad_parts(campaign: CampaignEntry, ad: AdEntry) -> dict[str, Any]:
    """The fields of a served ad that come from the catalog (``ServedAdOut`` describes them all)."""
    school = campaign.school
    return {
        "ad_id": ad.id,
        "campaign_id": campaign.id,
        "school": {"id": school.id, "name": school.name, "logo_url": school.logo_url},
        "headline": ad.headline,
        "bullets": list(ad.bullets),
        "tags": list(ad.tags),
        "badge": ad.badge,
        "consent_text": school.consent_text,
        "eligibility": _eligibility_parts(campaign.eligibility),
    }


def _eligibility_parts(rules: EligibilityEntry) -> dict[str, Any]:
    return {"min_education": rules.min_education, "min_age": rules.min_age,
            "graduation_year_max": rules.graduation_year_max, "requires_rn_license": rules.requires_rn_license,
            "military_only": rules.military_only}  # fmt: skip


def _program_parts(program: ProgramEntry) -> dict[str, Any]:
    return {"id": program.id, "name": program.name, "interest": program.interest,
            "degree_level": program.degree_level, "modality": program.modality}  # fmt: skip


def _ad_out(served: ServedAd, memo: dict[str, Any]) -> dict[str, Any]:
    """A served ad as the answer holds it. The catalog's parts are worked out once per index (in its
    ``memo``) and not validated again: every value comes from the validated catalog."""
    parts = memo.get(served.ad.id)
    if parts is None:
        parts = memo[served.ad.id] = _ad_parts(served.campaign, served.ad)
    programs = []
    for program in served.programs:
        found = memo.get(program.id)
        if found is None:
            found = memo[program.id] = _program_parts(program)
        programs.append(found)
    return {
        "rank": served.rank,
        **parts,
        "programs": programs,
        "programs_found": len(programs),
        "impression_id": served.impression_id,
        "click_url": served.click_url,
        "lead_token": served.lead_token,
    }


@endpoint(bp, "GET", "/v1/ads", summary="Ads matched to a visitor", roles=("admin", "publisher"),
          allow_publishable=True, query=AdsQuery, response=AdsResponse, limits=limits.ADS,
          errors=(401, 403, 422))  # fmt: skip
def get_ads(principal: Principal, query: AdsQuery) -> Response:
    """At most one ad per school, ranked by expected value per impression. Each returned ad is one
    impression. Browsers send the publishable key (`key` or `X-Publisher-Key`) from the publisher's
    domains; servers send the secret key as a bearer token. A bad or unknown postal code is
    422 `invalid_postal_code`; no match is 200 with `count: 0`."""
    location = _location(query)
    ad_request = _ad_request(principal, query, location, principal.publisher_id)
    started = time.perf_counter()
    served = decisions.decide_ads(ad_request)
    counted.count_ad_request(len(served), time.perf_counter() - started)
    memo = current_index().memo
    answer = {
        "request_id": ad_request.request_id,
        "location": {"postal_code": location.postal_code, "country": location.country, "region": location.region},
        "count": len(served),
        "ads": [_ad_out(ad, memo) for ad in served],
    }
    # Serialised once (orjson), not validated again: AdsResponse documents the shape.
    return Response(orjson.dumps(answer), mimetype="application/json")


@endpoint(bp, "GET", "/v1/ads/explain", summary="Why each campaign would or would not serve",
          roles=("admin",), query=ExplainQuery, response=ExplainResponse, errors=(401, 403, 422))  # fmt: skip
def explain_ads(principal: Principal, query: ExplainQuery) -> ExplainResponse:
    """Every campaign with the first rule that excluded it (`status`, `flight`, `schedule`, `interest`,
    `degree_level`, `modality`, `country`, `region`, `postal_code`, `radius`, `publisher`, `budget`,
    `lead_cap`, `frequency_cap`, `pacing`) or, when eligible, its score. Counts no impression."""
    location = _location(query)
    explained = decisions.explain(_ad_request(principal, query, location, query.publisher_id))
    return ExplainResponse(
        location=_location_out(location),
        campaigns=[
            ExplainedCampaignOut(
                campaign_id=item.campaign.id,
                school_id=item.campaign.school.id,
                eligible=item.excluded_by is None,
                excluded_by=item.excluded_by,
                score=item.score,
            )
            for item in explained
        ],
    )


@endpoint(bp, "GET", "/v1/click/<token>", summary="Follow an ad's link", roles=(), status=302, limits=limits.CLICKS,
          errors=(404,), extra_responses={"302": {"description": "Redirect to the ad's landing page"}})  # fmt: skip
def click(token: str) -> Response:
    """Redirects to the landing page with `utm_source` (the publisher) and `utm_medium=referral`.
    One click is counted per impression; repeats, declared bots, prefetches and links older than
    24 hours are redirected but not counted. A tampered link is 404."""
    outcome = clicks.record_click(
        token,
        is_bot=is_declared_bot(request.headers.get("User-Agent", "")),
        is_prefetch=is_prefetch(request.headers),
    )
    return Response(status=302, headers={"Location": outcome.location, "Cache-Control": "no-store"})


@bp.after_request
def no_store(response: Response) -> Response:
    # Ads and their tokens are for one visitor and one moment.
    response.headers.setdefault("Cache-Control", "no-store")
    return response
