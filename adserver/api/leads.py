"""Lead endpoints: intake (publishers), reading a lead, the school feed and returns."""

from __future__ import annotations

from flask import Blueprint, Response, request

from adserver.api import limits
from adserver.api.endpoint import endpoint
from adserver.auth import Principal
from adserver.logs import current_request_id
from adserver.metrics import counted
from adserver.schemas.common import Page
from adserver.schemas.leads import LeadCreatedOut, LeadDetailOut, LeadFeedQuery, LeadIn, LeadOut, ReturnIn
from adserver.services.leads import feed, intake, returns

bp = Blueprint("leads", __name__)


@endpoint(bp, "POST", "/v1/leads", summary="Submit a lead", roles=("publisher",), allow_publishable=True,
          body=LeadIn, response=LeadCreatedOut, status=201, limits=limits.LEADS,
          errors=(400, 401, 403, 409, 410, 415, 422, 503))  # fmt: skip
def submit_lead(principal: Principal, body: LeadIn) -> LeadCreatedOut:
    """Stores the lead, its consent record and its delivery job before answering. Failures:
    422 `validation_error` (with `fields`), 422 `not_eligible` (the failed rule in `fields`),
    422 `opted_out` (the person asked not to be contacted), 409 `duplicate_lead`, 409 `cap_reached`
    (a lead cap or a CPL budget), 410 `token_expired`, 429 `rate_limited` (a browser's address or a
    secret key over its rate)."""
    submitter = intake.Submitter(
        publisher_id=principal.publisher_id,
        ip=request.remote_addr or "",
        user_agent=request.user_agent.string or None,
        request_id=current_request_id(),
    )
    return LeadCreatedOut(id=intake.submit_lead(body, submitter), status="accepted")


@bp.after_request
def count_lead_submission(response: Response) -> Response:
    """Every answer to a lead submission, accepted or refused with its error code; a replayed answer
    (a repeated Idempotency-Key) was counted the first time."""
    if request.endpoint == "leads.submit_lead" and "Idempotent-Replayed" not in response.headers:
        if response.status_code == 201:
            counted.count_lead("accepted")
        elif response.status_code >= 400:
            error = (response.get_json(silent=True) or {}).get("error") or {}
            counted.count_lead("refused", str(error.get("code") or response.status_code))
    return response


@endpoint(bp, "GET", "/v1/leads/<lead_id>", summary="Get a lead", roles=("admin", "school", "publisher"),
          response=LeadDetailOut, errors=(401, 403, 404))  # fmt: skip
def get_lead(principal: Principal, lead_id: str) -> LeadDetailOut:
    """Admin, the owning school and the submitting publisher; with every delivery attempt."""
    return feed.lead_detail(feed.visible_lead(principal, lead_id))


def _wants_csv(query: LeadFeedQuery) -> bool:
    if query.format is not None:
        return query.format == "csv"
    best = request.accept_mimetypes.best_match(["application/json", "text/csv"])
    return best == "text/csv"


@endpoint(bp, "GET", "/v1/leads", summary="The lead feed", roles=("admin", "school"), query=LeadFeedQuery,
          response=Page[LeadOut], errors=(400, 401, 403, 422),
          extra_responses={"200": {"description": "The leads", "content": {
              "application/json": {"schema": {"$ref": "#/components/schemas/Page_LeadOut"}},
              "text/csv": {"schema": {"type": "string"}}}}})  # fmt: skip
def list_leads(principal: Principal, query: LeadFeedQuery) -> Page[LeadOut] | Response:
    """A school key reads its own leads, an admin key all (`school_id=` filters), oldest first, with
    every submitted field and the consent record. `format=csv` or `Accept: text/csv` answers
    `text/csv` with a header row (the cursor for the next page in the `X-Next-Cursor` header).
    Leads appear in the feed two seconds after they are accepted."""
    rows, next_cursor = feed.feed_page(principal, query)
    if _wants_csv(query):
        response = Response(feed.leads_csv(rows), mimetype="text/csv")
        response.headers["Content-Disposition"] = 'attachment; filename="leads.csv"'
        if next_cursor:
            response.headers["X-Next-Cursor"] = next_cursor
        return response
    return Page[LeadOut](data=rows, next_cursor=next_cursor)


@endpoint(bp, "POST", "/v1/leads/<lead_id>/return", summary="Return a lead", roles=("school", "admin"),
          body=ReturnIn, response=LeadDetailOut, errors=(400, 401, 403, 404, 409, 422))  # fmt: skip
def return_lead(principal: Principal, lead_id: str, body: ReturnIn) -> LeadDetailOut:
    """Within 30 days of delivery; a returned lead is not billed."""
    lead = feed.visible_lead(principal, lead_id)
    return feed.lead_detail(returns.return_lead(lead, body.reason))
