"""Lead intake and returns.

``submit_lead`` is the "request info" use case: verify the ad's lead token,
check the profile against the campaign, then, in one database transaction
serialised per school, refuse duplicates and anything over a cap or budget and
write the lead, its consent record and its delivery job (the outbox). Only
after the commit is the delivery task sent; if that send is lost, the sweeper
finds the job in the database.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import redis
from sqlalchemy import func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from adserver import clock
from adserver.crypto import encrypt, keyed_hash
from adserver.errors import ApiError, validation_error
from adserver.extensions import db
from adserver.geo import InvalidPostalCode, Location, resolve_postal_code
from adserver.models import Campaign, DeliveryJob, Lead, Program, School, campaign_programs
from adserver.schemas.leads import LeadIn
from adserver.services import counters, delivery
from adserver.services.eligibility import Profile, first_failed_rule
from adserver.services.tokens import InvalidToken, LeadTokenClaims, parse_lead_token

log = logging.getLogger(__name__)

LEAD_TOKEN_MAX_AGE_S = 24 * 3600
DUPLICATE_WINDOW = timedelta(days=30)
RETURN_WINDOW = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Submitter:
    """Who sent the lead and from where: the consent record's IP and user agent."""

    publisher_id: str | None
    ip: str
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class _Sealed:
    """The lead's personal fields, encrypted, and the keyed hashes used to find duplicates."""

    first_name: str
    last_name: str
    email: str
    phone: str
    postal_code: str
    ip: str
    email_hash: str
    phone_hash: str


def _read_token(token: str, submitter: Submitter) -> LeadTokenClaims:
    try:
        claims = parse_lead_token(token)
    except InvalidToken:
        raise validation_error({"lead_token": "not a lead token issued by this server"}) from None
    if claims.age_s > LEAD_TOKEN_MAX_AGE_S:
        raise ApiError(410, "token_expired", "This ad is too old to accept a lead; request ads again.")
    if claims.publisher_id != submitter.publisher_id:
        raise validation_error({"lead_token": "this ad was served to another publisher"})
    return claims


def _resolve_location(postal_code: str) -> Location:
    try:
        return resolve_postal_code(postal_code)
    except InvalidPostalCode:
        raise validation_error({"postal_code": "not a valid US ZIP or Canadian postal code"}) from None


def _seal(data: LeadIn, location: Location, ip: str) -> _Sealed:
    return _Sealed(
        first_name=encrypt(data.first_name),
        last_name=encrypt(data.last_name),
        email=encrypt(data.email),
        phone=encrypt(data.phone),
        postal_code=encrypt(location.postal_code),
        ip=encrypt(ip),
        email_hash=keyed_hash("email:" + data.email.casefold()),
        phone_hash=keyed_hash("phone:" + data.phone),
    )


def _check_program(campaign: Campaign, program_id: str | None) -> None:
    if program_id is None:
        return
    program = db.session.get(Program, program_id)
    offered = program is not None and program.school_id == campaign.school_id
    if offered:
        in_campaign = db.session.execute(
            select(campaign_programs.c.program_id).where(campaign_programs.c.campaign_id == campaign.id)
        ).all()
        offered = not in_campaign or any(row.program_id == program_id for row in in_campaign)
    if not offered:
        raise validation_error({"program_id": "unknown program for this ad"})


def _check_eligibility(campaign: Campaign, data: LeadIn, now: datetime) -> None:
    profile = Profile(data.education_level, data.birth_year, data.graduation_year, data.military, data.rn_license)
    failed = first_failed_rule(campaign.eligibility or {}, profile, now.year)
    if failed is not None:
        raise ApiError(
            422,
            "not_eligible",
            f"The profile does not meet this school's eligibility rule {failed.rule}: {failed.reason}.",
            {failed.rule: failed.reason},
        )


def _lock_school(school_id: str) -> School:
    """Serialise intake per school: duplicate, cap and budget checks then the insert run one at a time.

    PostgreSQL locks the school row; SQLite transactions already begin IMMEDIATE (one writer).
    """
    return db.session.execute(select(School).where(School.id == school_id).with_for_update()).scalar_one()


def _local_period_starts(timezone: str, now: datetime) -> tuple[datetime, datetime]:
    """The start of the school's current day and month, in UTC: caps and budgets follow its calendar."""
    local = now.astimezone(ZoneInfo(timezone))
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return day.astimezone(now.tzinfo), day.replace(day=1).astimezone(now.tzinfo)


def _count_and_spend(campaign_id: str, since: datetime | None) -> tuple[int, int]:
    where: list[ColumnElement[bool]] = [Lead.campaign_id == campaign_id]
    if since is not None:
        where.append(Lead.created_at >= since)
    count, spend = db.session.execute(
        select(func.count(Lead.id), func.coalesce(func.sum(Lead.price_cents), 0)).where(*where)
    ).one()
    return int(count), int(spend)


def _check_duplicate(school_id: str, sealed: _Sealed, now: datetime) -> None:
    earlier = db.session.execute(
        select(Lead.email_hash, Lead.phone_hash)
        .where(
            Lead.school_id == school_id,
            or_(Lead.email_hash == sealed.email_hash, Lead.phone_hash == sealed.phone_hash),
            Lead.created_at >= now - DUPLICATE_WINDOW,
        )
        .limit(1)
    ).first()
    if earlier is not None:
        field = "email" if earlier.email_hash == sealed.email_hash else "phone"
        raise ApiError(
            409,
            "duplicate_lead",
            "This person was already sent to this school in the last 30 days.",
            {field: "already submitted to this school in the last 30 days"},
        )


def _cap_reached(field: str, message: str) -> ApiError:
    return ApiError(409, "cap_reached", message, {field: "reached"})


def _check_caps_and_budget(campaign: Campaign, timezone: str, price_cents: int, now: datetime) -> None:
    """Every accepted lead counts, whatever became of it later, so a cap or budget is never passed."""
    day_start, month_start = _local_period_starts(timezone, now)
    day_count, day_spend = _count_and_spend(campaign.id, day_start)
    if campaign.leads_per_day is not None and day_count >= campaign.leads_per_day:
        raise _cap_reached("caps.leads_per_day", "This campaign has reached its leads for today.")
    if campaign.leads_per_month is not None:
        month_count, _ = _count_and_spend(campaign.id, month_start)
        if month_count >= campaign.leads_per_month:
            raise _cap_reached("caps.leads_per_month", "This campaign has reached its leads for this month.")
    if price_cents <= 0:
        return
    if campaign.daily_budget_cents is not None and day_spend + price_cents > campaign.daily_budget_cents:
        raise _cap_reached("budget.daily_cents", "This campaign has spent its daily budget.")
    if campaign.total_budget_cents is not None:
        _, total_spend = _count_and_spend(campaign.id, None)
        if total_spend + price_cents > campaign.total_budget_cents:
            raise _cap_reached("budget.total_cents", "This campaign has spent its total budget.")


def submit_lead(data: LeadIn, submitter: Submitter) -> Lead:
    """Accept a lead for the ad its token names, or raise the ApiError that says why not.

    The campaign must still exist; a campaign paused or ended after the ad was shown still
    accepts leads from that ad for the token's 24 hours (the visitor saw a live offer),
    within its caps and budgets.
    """
    claims = _read_token(data.lead_token, submitter)
    location = _resolve_location(data.postal_code)
    sealed = _seal(data, location, submitter.ip)

    campaign = db.session.get(Campaign, claims.campaign_id)
    if campaign is None or campaign.school_id != claims.school_id:
        raise validation_error({"lead_token": "the ad's campaign no longer exists"})
    _check_program(campaign, data.program_id)
    _check_eligibility(campaign, data, clock.now())

    school = _lock_school(campaign.school_id)
    # Taken after the lock, so within a school created_at follows commit order (see the feed).
    now = clock.now()
    price_cents = campaign.bid_cents if campaign.pricing_model == "cpl" else 0
    _check_duplicate(school.id, sealed, now)
    _check_caps_and_budget(campaign, school.timezone, price_cents, now)

    lead = Lead(
        campaign_id=campaign.id,
        school_id=school.id,
        publisher_id=submitter.publisher_id,
        ad_id=claims.ad_id,
        impression_id=claims.impression_id,
        program_id=data.program_id,
        price_cents=price_cents,
        pricing_model=campaign.pricing_model,
        first_name_enc=sealed.first_name,
        last_name_enc=sealed.last_name,
        email_enc=sealed.email,
        phone_enc=sealed.phone,
        postal_code_enc=sealed.postal_code,
        email_hash=sealed.email_hash,
        phone_hash=sealed.phone_hash,
        country=location.country,
        region=location.region,
        education_level=data.education_level,
        graduation_year=data.graduation_year,
        birth_year=data.birth_year,
        military=data.military,
        rn_license=data.rn_license,
        consent_text=data.consent.text,
        consent_at=now,
        consent_ip_enc=sealed.ip,
        consent_user_agent=(submitter.user_agent or "")[:1000] or None,
        consent_page_url=data.consent.page_url,
        created_at=now,
        updated_at=now,
    )
    db.session.add(lead)
    job: DeliveryJob | None = None
    if school.delivery_method == "http_post":
        db.session.flush()
        job = DeliveryJob(lead_id=lead.id, next_attempt_at=now, created_at=now, updated_at=now)
        db.session.add(job)
    db.session.commit()

    if job is not None:
        delivery.enqueue_delivery(job.id)
    try:
        counters.record_lead_accepted(campaign.id, school.timezone, price_cents, campaign.pricing_model, now)
    except (redis.ConnectionError, redis.TimeoutError):
        log.warning("lead counters not updated", extra={"lead_id": lead.id, "campaign_id": campaign.id})
    return lead


def return_lead(lead: Lead, reason: str) -> Lead:
    """Mark a delivered lead returned (not billed); only within 30 days of its delivery."""
    locked = db.session.execute(select(Lead).where(Lead.id == lead.id).with_for_update()).scalar_one()
    if locked.status == "returned":
        raise ApiError(409, "already_returned", "This lead was already returned.")
    delivered_at = locked.delivered_at
    if locked.status == "accepted" and db.session.get(School, locked.school_id).delivery_method == "pull":  # type: ignore[union-attr]
        # A pull school has its leads in its feed from the moment they are accepted.
        delivered_at = locked.created_at
    if delivered_at is None:
        raise ApiError(409, "not_returnable", f"A lead that is {locked.status} cannot be returned.")
    now = clock.now()
    if now - delivered_at > RETURN_WINDOW:
        raise ApiError(409, "return_window_closed", "Leads can be returned only within 30 days of delivery.")
    locked.status = "returned"
    locked.return_reason = reason
    locked.returned_at = now
    locked.updated_at = now
    db.session.commit()
    return locked
