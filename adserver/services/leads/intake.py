"""Lead intake.

``submit_lead`` is the "request info" use case: verify the ad's lead token,
check the profile against the campaign, then, in one database transaction
serialised per school, refuse opted-out people, duplicates and anything over a cap
or budget and write the lead with its consent record and delivery job (the outbox)
in one row. Only after the commit is the lead counted and its job announced in Redis (by a
background batcher, with the other leads accepted meanwhile), where a relay in
each Celery worker turns it into a delivery task; if the announcement is lost,
the sweeper finds the job in the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast
from zoneinfo import ZoneInfo

from flask import Flask, current_app
from sqlalchemy import Table, bindparam, func, insert, literal, select

from adserver import clock
from adserver.batching import BackgroundBatcher
from adserver.errors import ApiError, validation_error
from adserver.extensions import write_transaction
from adserver.geo import InvalidPostalCode, Location, resolve_postal_code
from adserver.ids import new_id
from adserver.models import Campaign, Lead, OptOut, Program, School, campaign_programs
from adserver.models.base import UTCDateTime
from adserver.prepared import Prepared, RawTransaction
from adserver.schemas.leads import LeadIn
from adserver.services.leads import delivery
from adserver.services.leads.eligibility import Profile, first_failed_rule
from adserver.services.leads.personal_data import SealedProfile, seal_profile
from adserver.services.reporting.rollups import Tally, add_to_rollups_raw, lead_outcome_figures, rollup_key
from adserver.services.serving import counters, usage
from adserver.services.serving.tokens import InvalidToken, LeadTokenClaims, parse_lead_token

LEAD_TOKEN_MAX_AGE_S = 24 * 3600
ACCEPTED_LEADS = "accepted_leads"
# Under load, one Redis call carries the leads accepted in this long (adserver.batching).
ACCEPTED_LEADS_INTERVAL_S = 0.02
DUPLICATE_WINDOW = timedelta(days=30)
OPTED_OUT_MESSAGE = (
    "Sorry, we can't send this request: the owner of this email address or phone number asked not to be "
    "contacted by schools through this service."
)


def init_app(app: Flask) -> None:
    app.extensions[ACCEPTED_LEADS] = BackgroundBatcher(
        app, counters.record_leads_accepted, name="accepted-leads", interval_s=ACCEPTED_LEADS_INTERVAL_S
    )


def flush_accepted_leads() -> None:
    """Send the counts and announcements of the leads accepted so far now, in this thread."""
    current_app.extensions[ACCEPTED_LEADS].flush()


@dataclass(frozen=True, slots=True)
class Submitter:
    """Who sent the lead and from where: the consent record's IP and user agent, and the request's id
    (which the lead keeps for the log lines of its delivery)."""

    publisher_id: str | None
    ip: str
    user_agent: str | None
    request_id: str | None = None


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


# The intake statements are prepared once (adserver.prepared): SQLAlchemy's work per execution
# costs more than the database's.
_leads = cast(Table, Lead.__table__)
_INSERT_LEAD = Prepared(insert(_leads))
_TARGET = Prepared(
    select(
        Campaign.id, Campaign.school_id, Campaign.pricing_model, Campaign.bid_cents, Campaign.daily_budget_cents,
        Campaign.total_budget_cents, Campaign.leads_per_day, Campaign.leads_per_month, Campaign.eligibility,
        School.timezone, School.delivery_method,
    )
    .join(School, School.id == Campaign.school_id)
    .where(Campaign.id == bindparam("campaign_id"))
    .with_for_update(of=School)
)  # fmt: skip


_listed = select(campaign_programs.c.program_id).where(campaign_programs.c.campaign_id == bindparam("campaign_id"))
# The program, whether the campaign lists it, and whether the campaign lists any program.
_PROGRAM = Prepared(
    select(Program.id, _listed.where(campaign_programs.c.program_id == bindparam("program_id")).exists(),
           _listed.exists())
    .where(Program.id == bindparam("program_id"), Program.school_id == bindparam("school_id"))
)  # fmt: skip


def _since(name: str) -> Any:
    return bindparam(name, type_=UTCDateTime())


@lru_cache(maxsize=16)
def _usage_query(day_count: bool, day_spend: bool, month_count: bool, total_spend: bool) -> Prepared:
    """Whether the person opted out (the opted-out hash, or None), the school's duplicate (an email
    hash, or None), then the campaign's lead count and spend for the day, its lead count for the month
    and its total spend; each only when the campaign has that limit (else 0), since counting a busy
    campaign's leads is the costly part."""
    c = _leads.c
    campaign: Any = bindparam("campaign_id")

    def count(since: str) -> Any:
        return usage.lead_count(campaign, _since(since)).scalar_subquery()

    def spend(since: str | None) -> Any:
        return usage.lead_spend(campaign, _since(since) if since else None).scalar_subquery()

    def earlier(match: Any) -> Any:
        # One lookup per hash, so each uses its (school_id, hash) index; an OR of the two
        # would walk every lead of the school.
        recent = c.created_at >= _since("recent")
        return select(c.email_hash).where(c.school_id == bindparam("school_id"), match, recent).limit(1)

    duplicate = func.coalesce(
        earlier(c.email_hash == bindparam("email_hash")).scalar_subquery(),
        earlier(c.phone_hash == bindparam("phone_hash")).scalar_subquery(),
    )
    # Both hashes in one lookup of the opt-out list's primary key (one column holds both: an email's
    # hash and a phone's are keyed with their kind, see personal_data).
    opted_out = select(OptOut.hash).where(OptOut.hash.in_([bindparam("email_hash"), bindparam("phone_hash")])).limit(1)
    return Prepared(
        select(
            opted_out.scalar_subquery(),
            duplicate,
            count("day_start") if day_count else literal(0),
            spend("day_start") if day_spend else literal(0),
            count("month_start") if month_count else literal(0),
            spend(None) if total_spend else literal(0),
        )
    )


@dataclass(frozen=True, slots=True)
class _Target:
    """The campaign a lead is for, with what intake needs of its school."""

    campaign_id: str
    school_id: str
    pricing_model: str
    bid_cents: int
    daily_budget_cents: int | None
    total_budget_cents: int | None
    leads_per_day: int | None
    leads_per_month: int | None
    eligibility: dict[str, Any]
    timezone: str
    delivery_method: str

    @property
    def price_cents(self) -> int:
        """What the lead spends: the bid for a CPL campaign; nothing for CPC (the click was paid)."""
        return self.bid_cents if self.pricing_model == "cpl" else 0


def _lock_target(transaction: RawTransaction, claims: LeadTokenClaims) -> _Target:
    """Load the token's campaign and lock its school's row, which serialises intake per school:
    the duplicate, cap and budget checks and the insert then run one at a time.

    PostgreSQL takes the row lock; SQLite transactions already begin IMMEDIATE (one writer).
    """
    rows = _TARGET.run(transaction, {"campaign_id": claims.campaign_id})
    if not rows or rows[0][1] != claims.school_id:
        raise validation_error({"lead_token": "the ad's campaign no longer exists"})
    return _Target(*rows[0])


def _check_program(transaction: RawTransaction, target: _Target, program_id: str | None) -> None:
    """A program, when named, must be the school's and, if the campaign lists programs, one of them."""
    if program_id is None:
        return
    rows = _PROGRAM.run(transaction, {"program_id": program_id, "school_id": target.school_id,
                                      "campaign_id": target.campaign_id})  # fmt: skip
    if not rows or (rows[0][2] and not rows[0][1]):
        raise validation_error({"program_id": "unknown program for this ad"})


def _check_eligibility(target: _Target, data: LeadIn, now: datetime) -> None:
    profile = Profile(data.education_level, data.birth_year, data.graduation_year, data.military, data.rn_license)
    failed = first_failed_rule(target.eligibility or {}, profile, now.year)
    if failed is not None:
        raise ApiError(
            422,
            "not_eligible",
            f"The profile does not meet this school's eligibility rule {failed.rule}: {failed.reason}.",
            {failed.rule: failed.reason},
        )


def _local_period_starts(timezone: str, now: datetime) -> tuple[datetime, datetime]:
    """The start of the school's current day and month, in UTC: caps and budgets follow its calendar."""
    local = now.astimezone(ZoneInfo(timezone))
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return day.astimezone(now.tzinfo), day.replace(day=1).astimezone(now.tzinfo)


def _cap_reached(field: str, message: str) -> ApiError:
    return ApiError(409, "cap_reached", message, {field: "reached"})


def _check_opt_out_duplicate_caps_and_budget(
    transaction: RawTransaction, target: _Target, sealed: SealedProfile, now: datetime
) -> None:
    """One query for the opt-out list and all four checks. Every accepted lead counts, whatever became
    of it later, so a cap or a budget is never passed."""
    price = target.price_cents
    needs_day_spend = price > 0 and target.daily_budget_cents is not None
    needs_total = price > 0 and target.total_budget_cents is not None
    by_period = (target.leads_per_day is not None, needs_day_spend, target.leads_per_month is not None)
    query = _usage_query(*by_period, needs_total)
    params = {"school_id": target.school_id, "campaign_id": target.campaign_id, "email_hash": sealed.email_hash,
              "phone_hash": sealed.phone_hash, "recent": now - DUPLICATE_WINDOW}  # fmt: skip
    if any(by_period):  # the school's calendar, only for the limits that count by it
        params["day_start"], params["month_start"] = _local_period_starts(target.timezone, now)
    (usage,) = query.run(transaction, params)
    opted_out_hash, earlier_email_hash, day_count, day_spend, month_count, total_spend = usage

    if opted_out_hash is not None:
        field = "email" if opted_out_hash == sealed.email_hash else "phone"
        raise ApiError(422, "opted_out", OPTED_OUT_MESSAGE, {field: "asked not to be contacted by schools"})
    if earlier_email_hash is not None:
        field = "email" if earlier_email_hash == sealed.email_hash else "phone"
        raise ApiError(
            409,
            "duplicate_lead",
            "This person was already sent to this school in the last 30 days.",
            {field: "already submitted to this school in the last 30 days"},
        )
    if target.leads_per_day is not None and day_count >= target.leads_per_day:
        raise _cap_reached("caps.leads_per_day", "This campaign has reached its leads for today.")
    if target.leads_per_month is not None and month_count >= target.leads_per_month:
        raise _cap_reached("caps.leads_per_month", "This campaign has reached its leads for this month.")
    if needs_day_spend and day_spend + price > (target.daily_budget_cents or 0):
        raise _cap_reached("budget.daily_cents", "This campaign has spent its daily budget.")
    if needs_total and total_spend + price > (target.total_budget_cents or 0):
        raise _cap_reached("budget.total_cents", "This campaign has spent its total budget.")


def _accepted_tally(target: _Target, claims: LeadTokenClaims, submitter: Submitter, now: datetime,
                    delivers: bool) -> Tally:  # fmt: skip
    """The accepted lead for the rollups; a pull school's lead is in its feed from now on, so it also
    counts as delivered (and, for CPL, billed)."""
    key = rollup_key(now, target.campaign_id, claims.ad_id, submitter.publisher_id, target.school_id)
    tally = Tally()
    tally.add(key, leads=1)
    if not delivers:
        tally.add(key, **lead_outcome_figures("delivered", target.price_cents))
    return tally


def submit_lead(data: LeadIn, submitter: Submitter) -> str:
    """Accept a lead for the ad its token names and return its id, or raise the ApiError that
    says why not.

    The campaign must still exist; a campaign paused or ended after the ad was shown still
    accepts leads from that ad for the token's 24 hours (the visitor saw a live offer),
    within its caps and budgets.
    """
    claims = _read_token(data.lead_token, submitter)
    location = _resolve_location(data.postal_code)
    sealed = seal_profile(data, location.postal_code, submitter.ip)
    lead_id = new_id("lead")

    # The transaction is kept to the database work: everything above runs before it.
    with write_transaction() as transaction:
        target = _lock_target(transaction, claims)
        _check_program(transaction, target, data.program_id)
        # Taken after the lock, so within a school created_at follows commit order (see the feed).
        now = clock.now()
        _check_eligibility(target, data, now)
        _check_opt_out_duplicate_caps_and_budget(transaction, target, sealed, now)

        delivers = target.delivery_method == "http_post"
        _INSERT_LEAD.run(
            transaction,
            dict(  # noqa: C408 (keywords read better than 30 quoted keys)
                id=lead_id, status="accepted", campaign_id=target.campaign_id, school_id=target.school_id,
                publisher_id=submitter.publisher_id, ad_id=claims.ad_id, impression_id=claims.impression_id,
                request_id=submitter.request_id,
                program_id=data.program_id, price_cents=target.price_cents, pricing_model=target.pricing_model,
                first_name_enc=sealed.first_name, last_name_enc=sealed.last_name, email_enc=sealed.email,
                phone_enc=sealed.phone, postal_code_enc=sealed.postal_code, email_hash=sealed.email_hash,
                phone_hash=sealed.phone_hash, country=location.country, region=location.region,
                education_level=data.education_level, graduation_year=data.graduation_year,
                birth_year=data.birth_year, military=data.military, rn_license=data.rn_license,
                consent_text=data.consent.text, consent_at=now, consent_ip_enc=sealed.ip,
                consent_user_agent=(submitter.user_agent or "")[:1000] or None,
                consent_page_url=data.consent.page_url, created_at=now, updated_at=now,
                # The delivery job: a pull school's leads wait in its feed.
                delivery_state="pending" if delivers else None, attempt_count=0,
                next_attempt_at=now if delivers else None,
            )
        )  # fmt: skip
        add_to_rollups_raw(transaction, _accepted_tally(target, claims, submitter, now, delivers))

    # After the commit: the live counters, and the announcement of the delivery job to the relay in the Celery
    # workers (see ``delivery.relay_announced_jobs``), sent with other leads' in one Redis call. If that call
    # fails, the lead stands: the sweeper sends its delivery and intake checks caps in the database.
    current_app.extensions[ACCEPTED_LEADS].add(
        counters.AcceptedLead(lead_id, target.campaign_id, target.timezone, target.price_cents, target.pricing_model,
                              now, also_push=(delivery.OUTBOX_KEY, lead_id) if delivers else None)
    )  # fmt: skip
    return lead_id
