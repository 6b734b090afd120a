"""Serving endpoints: ads for a visitor, the explanation of a decision, and click tracking."""

from __future__ import annotations

from flask import Blueprint, Response, g, request

from adserver.api import limits
from adserver.api.endpoint import endpoint
from adserver.auth import Principal
from adserver.errors import ApiError
from adserver.geo import InvalidPostalCode, Location, resolve_postal_code
from adserver.ids import new_id
from adserver.schemas.serving import (
    AdsQuery,
    AdsResponse,
    ExplainedCampaignOut,
    ExplainQuery,
    ExplainResponse,
    LocationOut,
    ProgramBriefOut,
    SchoolBriefOut,
    ServedAdOut,
)
from adserver.services.serving import clicks, decisions
from adserver.services.serving.bots import is_declared_bot, is_prefetch
from adserver.services.serving.decisions import AdRequest, ServedAd

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


def _ad_request(query: AdsQuery, location: Location, publisher_id: str | None) -> AdRequest:
    return AdRequest(
        location=location,
        interest=query.interest,
        degree_level=query.degree_level,
        modality=query.modality,
        limit=query.limit,
        visitor_id=query.visitor_id,
        publisher_id=publisher_id,
        is_bot=is_declared_bot(request.headers.get("User-Agent", "")),
        request_id=_request_id(),
    )


def _location_out(location: Location) -> LocationOut:
    return LocationOut(postal_code=location.postal_code, country=location.country, region=location.region)


def _ad_out(served: ServedAd) -> ServedAdOut:
    # Built without validation (model_construct): every value comes from the validated catalog.
    campaign, ad, school = served.campaign, served.ad, served.campaign.school
    return ServedAdOut.model_construct(
        rank=served.rank,
        ad_id=ad.id,
        campaign_id=campaign.id,
        school=SchoolBriefOut.model_construct(id=school.id, name=school.name, logo_url=school.logo_url),
        headline=ad.headline,
        bullets=list(ad.bullets),
        tags=list(ad.tags),
        badge=ad.badge,
        programs=[
            ProgramBriefOut.model_construct(
                id=p.id, name=p.name, interest=p.interest, degree_level=p.degree_level, modality=p.modality
            )
            for p in served.programs
        ],
        programs_found=len(served.programs),
        impression_id=served.impression_id,
        click_url=served.click_url,
        lead_token=served.lead_token,
        consent_text=school.consent_text,
    )


@endpoint(bp, "GET", "/v1/ads", summary="Ads matched to a visitor", roles=("admin", "publisher"),
          allow_publishable=True, query=AdsQuery, response=AdsResponse, limits=limits.ADS,
          errors=(401, 403, 422))  # fmt: skip
def get_ads(principal: Principal, query: AdsQuery) -> AdsResponse:
    """At most one ad per school, ranked by expected value per impression. Each returned ad is one
    impression. Browsers send the publishable key (`key` or `X-Publisher-Key`) from the publisher's
    domains; servers send the secret key as a bearer token. A bad or unknown postal code is
    422 `invalid_postal_code`; no match is 200 with `count: 0`."""
    location = _location(query)
    ad_request = _ad_request(query, location, principal.publisher_id)
    served = decisions.decide_ads(ad_request)
    return AdsResponse(
        request_id=ad_request.request_id,
        location=_location_out(location),
        count=len(served),
        ads=[_ad_out(ad) for ad in served],
    )


@endpoint(bp, "GET", "/v1/ads/explain", summary="Why each campaign would or would not serve",
          roles=("admin",), query=ExplainQuery, response=ExplainResponse, errors=(401, 403, 422))  # fmt: skip
def explain_ads(principal: Principal, query: ExplainQuery) -> ExplainResponse:
    """Every campaign with the first rule that excluded it (`status`, `flight`, `schedule`, `interest`,
    `degree_level`, `modality`, `country`, `region`, `postal_code`, `radius`, `publisher`, `budget`,
    `lead_cap`, `frequency_cap`, `pacing`) or, when eligible, its score. Counts no impression."""
    location = _location(query)
    explained = decisions.explain(_ad_request(query, location, query.publisher_id))
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
