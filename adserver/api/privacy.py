"""Privacy endpoints: a person's opt-out and erasure (admin), and schools' opt-out notices."""

from __future__ import annotations

from flask import Blueprint

from adserver.api.endpoint import endpoint
from adserver.auth import Principal
from adserver.schemas.common import Page
from adserver.schemas.privacy import OptOutNoticeOut, OptOutsQuery, PersonIn, PrivacyRequestOut
from adserver.services.privacy import notices, person_requests
from adserver.services.privacy.person_requests import Person

bp = Blueprint("privacy", __name__)


@endpoint(bp, "POST", "/v1/privacy/opt-out", summary="Opt a person out", roles=("admin",), body=PersonIn,
          response=PrivacyRequestOut, errors=(400, 401, 403, 415, 422))  # fmt: skip
def opt_out(principal: Principal, body: PersonIn) -> PrivacyRequestOut:
    """From now on no lead with this email or phone is accepted (422 `opted_out`) and none of the person's
    leads still pending is delivered (their status becomes `suppressed`). Each school that may have one of
    the person's leads from the last five years gets one notice naming them: an `http_post` school as a
    signed POST to its delivery URL (`{"id", "type": "opt_out", "school_id", "lead_ids", "requested_at"}`,
    the notice id as `webhook-id`), and every school in `GET /v1/opt-outs`. Only keyed hashes of the email
    and phone are kept. Idempotent: a repeat changes nothing and finds the same leads."""
    return PrivacyRequestOut(leads_affected=person_requests.opt_out(Person.named(body.email, body.phone),
                                                                    principal.key_id))  # fmt: skip


@endpoint(bp, "POST", "/v1/privacy/erase", summary="Erase a person's data", roles=("admin",), body=PersonIn,
          response=PrivacyRequestOut, errors=(400, 401, 403, 415, 422))  # fmt: skip
def erase(principal: Principal, body: PersonIn) -> PrivacyRequestOut:
    """Opts the person out (see `POST /v1/privacy/opt-out`), then destroys the personal data of every lead
    of theirs: `GET /v1/leads/{id}` then shows `"erased": true` and no personal field; ids, campaign, times,
    the consent text and time and the status stay. `leads_affected` counts the leads erased, so a repeat,
    which finds nothing left to erase, answers 0."""
    return PrivacyRequestOut(leads_affected=person_requests.erase(Person.named(body.email, body.phone),
                                                                  principal.key_id))  # fmt: skip


@endpoint(bp, "GET", "/v1/opt-outs", summary="Opt-out notices", roles=("school", "admin"), query=OptOutsQuery,
          response=Page[OptOutNoticeOut], errors=(400, 401, 403, 422))  # fmt: skip
def list_opt_outs(principal: Principal, query: OptOutsQuery) -> Page[OptOutNoticeOut]:
    """A school key reads its own notices, an admin key all (`school_id=` filters), oldest first: each names
    the leads of an opted-out person the school may have, which it should stop using. Pull schools read
    them here; `http_post` schools are also sent each one. Notices appear two seconds after the request."""
    page, next_cursor = notices.notices_page(principal, query)
    return Page[OptOutNoticeOut](data=page, next_cursor=next_cursor)
