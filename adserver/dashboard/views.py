"""The dashboard's pages and forms: sign-in and sign-out, the overview for a date range, pausing and
resuming a campaign, and the campaign table as CSV.

Every POST is checked for its CSRF token (Flask-WTF) before its view runs; every view but the
sign-in form needs a signed-in admin or school, and a school sees and changes only its own campaigns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, timedelta
from functools import wraps
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from adserver import clock
from adserver.auth import Principal
from adserver.dashboard.sessions import sign_in, sign_out, signed_in_principal
from adserver.errors import ApiError
from adserver.extensions import csrf, db
from adserver.models import Campaign, School
from adserver.services.catalog.campaigns import update_campaign
from adserver.services.reporting.overview import build_overview, campaign_csv, campaign_lines
from adserver.services.reporting.reports import Scope, check_range

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="templates", static_folder="static")
DEFAULT_DAYS = 30
PAUSABLE = ("active", "paused")  # the statuses a campaign goes between on the dashboard


@bp.before_request
def check_csrf_token() -> None:
    """Refuse a POST without the token of this browser's session (GET and HEAD pass)."""
    csrf.protect()


@bp.after_request
def keep_out_of_caches(response: Response) -> ResponseReturnValue:
    if request.endpoint != "dashboard.static":
        response.headers["Cache-Control"] = "no-store"  # figures and tokens stay out of shared and back caches
    return response


@bp.errorhandler(HTTPException)
def error_page(exc: HTTPException) -> tuple[str, int]:
    if isinstance(exc, CSRFError):
        message = "This form has expired or did not come from this dashboard. Reload the page and try again."
    else:
        message = exc.description or "That did not work."
    return render_template("dashboard/error.html", message=message, status=exc.code), exc.code or 500


def requires_sign_in(view: Callable[..., Any]) -> Callable[..., Any]:
    """Give the view the signed-in principal; without one, back to the sign-in form."""

    @wraps(view)
    def wrapped(**kwargs: Any) -> Any:
        principal = signed_in_principal()
        if principal is None:
            if request.method == "POST":
                flash("Your sign-in has ended; sign in again.", "error")
            return redirect(url_for(".page"), 303)
        return view(principal, **kwargs)

    return wrapped


def _range(args: Mapping[str, str]) -> tuple[date, date, str | None]:
    """The range asked for, or the last 30 days (today included) with why the one asked for was not shown."""
    today = clock.now().date()
    default = (today - timedelta(days=DEFAULT_DAYS - 1), today)
    if not args.get("from") and not args.get("to"):
        return *default, None
    try:
        start, end = date.fromisoformat(args.get("from", "")), date.fromisoformat(args.get("to", ""))
        check_range(start, end)
    except ValueError:
        return *default, "Dates are written YYYY-MM-DD; showing the last 30 days instead."
    except ApiError as exc:
        reasons = "; ".join(f"{field} {why}" for field, why in (exc.fields or {}).items())
        return *default, f"That range cannot be shown ({reasons}); showing the last 30 days instead."
    return start, end, None


def _range_args(start: date, end: date) -> dict[str, Any]:
    return {"from": start.isoformat(), "to": end.isoformat()}


def _back_to_page() -> ResponseReturnValue:
    """After a form: the page again, for the range the form was sent from."""
    kept: dict[str, Any] = {name: request.form.get(name, "")[:10] for name in ("from", "to") if request.form.get(name)}
    return redirect(url_for(".page", **kept), 303)


@bp.get("")
def page() -> ResponseReturnValue:
    principal = signed_in_principal()
    if principal is None:
        return render_template("dashboard/sign_in.html")
    start, end, range_error = _range(request.args)
    school = db.session.get(School, principal.school_id) if principal.school_id else None
    signed_in_as = school.name if school is not None else "Admin"
    overview = build_overview(start, end, Scope.of(principal))
    chart = {
        "days": [day.day.isoformat() for day in overview.days],
        "impressions": [day.impressions for day in overview.days],
        "clicks": [day.clicks for day in overview.days],
        "leads": [day.leads for day in overview.days],
    }
    return render_template(
        "dashboard/page.html",
        overview=overview,
        signed_in_as=signed_in_as,
        show_school=principal.school_id is None,
        range_args=_range_args(start, end),
        range_error=range_error,
        csv_url=url_for(".campaigns_csv", **_range_args(start, end)),
        chart=chart,
    )


@bp.post("/sign-in")
def sign_in_submit() -> ResponseReturnValue:
    key = request.form.get("key", "").strip()
    if not key:
        return render_template("dashboard/sign_in.html", error="Paste a key to sign in."), 400
    refused = sign_in(key)
    if refused is not None:
        status, message = refused
        return render_template("dashboard/sign_in.html", error=message), status
    return redirect(url_for(".page"), 303)


@bp.post("/sign-out")
def sign_out_submit() -> ResponseReturnValue:
    sign_out()
    flash("Signed out.", "info")
    return redirect(url_for(".page"), 303)


@bp.post("/range")
@requires_sign_in
def apply_range(principal: Principal) -> ResponseReturnValue:
    """The range form posts (so it carries its CSRF token like every form) and lands on a page
    whose address holds the range, to bookmark or share."""
    return _back_to_page()


@bp.post("/campaigns/<campaign_id>/status")
@requires_sign_in
def set_campaign_status(principal: Principal, campaign_id: str) -> ResponseReturnValue:
    """Pause an active campaign or resume a paused one; ``/v1/ads`` follows within 2 seconds."""
    wanted = request.form.get("status", "")
    if wanted not in PAUSABLE:
        abort(400, "Choose to pause or resume the campaign.")
    campaign = db.session.get(Campaign, campaign_id) if len(campaign_id) <= 40 else None
    if campaign is None or (principal.school_id is not None and campaign.school_id != principal.school_id):
        abort(404, "No such campaign.")  # another school's campaign is not revealed to exist
    if campaign.status not in PAUSABLE:
        flash(f"{campaign.name} is {campaign.status}; only active and paused campaigns can be paused or resumed.",
              "error")  # fmt: skip
        return _back_to_page()
    if campaign.status != wanted:  # else the form was sent twice: already done
        try:
            update_campaign(campaign, {"status": wanted})
        except ApiError as exc:
            db.session.rollback()
            flash(f"{campaign.name} could not be changed: {exc.message}", "error")
            return _back_to_page()
    flash(f"{campaign.name} is {'paused' if wanted == 'paused' else 'running again'}.", "info")
    return _back_to_page()


@bp.get("/campaigns.csv")
@requires_sign_in
def campaigns_csv(principal: Principal) -> ResponseReturnValue:
    """The campaign table of the page for the same range, one row per campaign."""
    start, end, _ = _range(request.args)
    lines = campaign_lines(start, end, Scope.of(principal))
    db.session.rollback()
    return Response(
        campaign_csv(lines),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="campaigns-{start}-{end}.csv"'},
    )
