"""Reading leads: one lead for its owners, and the school feed (JSON pages or CSV).

The feed pages by ``(created_at, id)`` and shows only leads older than a short
settle delay. ``created_at`` is set inside the intake transaction, after the
school's lock, so a lead committed late cannot carry a time well before leads
already shown; waiting ``FEED_SETTLE_S`` covers any transaction still in flight,
so a cursor never skips a lead and never repeats one.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from adserver import clock
from adserver.auth import Principal
from adserver.errors import not_found
from adserver.extensions import db
from adserver.models import DeliveryAttempt, Lead, Program
from adserver.pagination import paginate_by_time
from adserver.schemas.leads import AttemptOut, LeadDetailOut, LeadFeedQuery, LeadOut
from adserver.services.leads.personal_data import consent_ip, profile_fields
from adserver.services.leads.statuses import SUPPRESSED
from adserver.spreadsheet import spreadsheet_cell

FEED_SETTLE_S = 2.0

CSV_COLUMNS = (
    "id", "status", "created_at", "campaign_id", "school_id", "publisher_id", "program_id", "program_name",
    "first_name", "last_name", "email", "phone", "postal_code", "country", "region", "education_level",
    "graduation_year", "birth_year", "military", "rn_license", "consent_granted", "consent_text", "consent_at",
    "consent_ip", "consent_user_agent", "consent_page_url", "delivered_at", "rejection_reason", "returned_at",
    "return_reason", "erased",
)  # fmt: skip


def visible_lead(principal: Principal, lead_id: str) -> Lead:
    """The lead, if this key may read it: admin, the owning school (unless the lead was suppressed: the
    school never received it), the submitting publisher. Anyone else gets the same 404 as for a lead
    that does not exist."""
    lead = db.session.get(Lead, lead_id) if len(lead_id) <= 40 else None
    if lead is None:
        raise not_found("lead")
    if principal.role == "school" and (lead.school_id != principal.school_id or lead.status == SUPPRESSED):
        raise not_found("lead")
    if principal.role == "publisher" and lead.publisher_id != principal.publisher_id:
        raise not_found("lead")
    return lead


def _program_names(leads: Iterable[Lead]) -> dict[str, str]:
    ids = {lead.program_id for lead in leads if lead.program_id}
    if not ids:
        return {}
    return {row.id: row.name for row in db.session.execute(select(Program.id, Program.name).where(Program.id.in_(ids)))}


def _fields(lead: Lead, program_name: str | None) -> dict[str, Any]:
    return {
        "id": lead.id,
        "status": lead.status,
        "erased": lead.erased_at is not None,
        "campaign_id": lead.campaign_id,
        "school_id": lead.school_id,
        "publisher_id": lead.publisher_id,
        "ad_id": lead.ad_id,
        "impression_id": lead.impression_id,
        "program_id": lead.program_id,
        "program_name": program_name,
        **profile_fields(lead),
        "consent": {
            "granted": True,
            "text": lead.consent_text,
            "at": lead.consent_at,
            "ip": consent_ip(lead),
            "user_agent": lead.consent_user_agent,
            "page_url": lead.consent_page_url,
        },
        "created_at": lead.created_at,
        "delivered_at": lead.delivered_at,
        "rejection_reason": lead.rejection_reason,
        "returned_at": lead.returned_at,
        "return_reason": lead.return_reason,
    }


def lead_detail(lead: Lead) -> LeadDetailOut:
    """The lead with its fields decrypted and every delivery attempt."""
    names = _program_names([lead])
    attempts = db.session.scalars(
        select(DeliveryAttempt).where(DeliveryAttempt.lead_id == lead.id).order_by(DeliveryAttempt.number)
    )
    return LeadDetailOut.model_validate(
        {**_fields(lead, names.get(lead.program_id or "")),
         "attempts": [AttemptOut.model_validate(attempt) for attempt in attempts]}
    )  # fmt: skip


def feed_page(principal: Principal, query: LeadFeedQuery) -> tuple[list[LeadOut], str | None]:
    """One page of the caller's leads, oldest first. A school key sees only its own leads, and not
    those suppressed before delivery.

    ``next_cursor`` follows the last lead of any non-empty page, so a school that keeps its last
    cursor and polls again later gets exactly the leads that arrived since; an empty page has none.
    """
    stmt = select(Lead).where(Lead.created_at <= clock.now() - timedelta(seconds=FEED_SETTLE_S))
    if principal.role == "school":
        stmt = stmt.where(Lead.school_id == principal.school_id, Lead.status != SUPPRESSED)
    if query.school_id:
        stmt = stmt.where(Lead.school_id == query.school_id)
    if query.since is not None:
        stmt = stmt.where(Lead.created_at >= query.since)
    leads, next_cursor = paginate_by_time(stmt, Lead.created_at, Lead.id, query.limit, query.cursor)
    names = _program_names(leads)
    page = [LeadOut.model_validate(_fields(lead, names.get(lead.program_id or ""))) for lead in leads]
    return page, next_cursor


def leads_csv(leads: Iterable[LeadOut]) -> str:
    """CSV with a header row; consent flattened into consent_* columns."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for lead in leads:
        data = lead.model_dump()
        consent = data.pop("consent")
        data.update({f"consent_{key}": value for key, value in consent.items()})
        writer.writerow([spreadsheet_cell(data.get(column)) for column in CSV_COLUMNS])
    return out.getvalue()
