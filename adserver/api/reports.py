"""Reports: campaign figures by day, campaign, school and publisher, in JSON or CSV."""

from __future__ import annotations

from flask import Blueprint, Response, request

from adserver.api.endpoint import endpoint
from adserver.auth import Principal
from adserver.schemas.reports import ReportQuery, ReportResponse
from adserver.services.reporting.reports import Scope, build_report, report_csv, report_json

bp = Blueprint("reports", __name__)


def _wants_csv(query: ReportQuery) -> bool:
    if query.format is not None:
        return query.format == "csv"
    return request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv"


@endpoint(bp, "GET", "/v1/reports", summary="Campaign report", roles=("admin", "school", "publisher"),
          query=ReportQuery, response=ReportResponse, errors=(401, 403, 422),
          extra_responses={"200": {"description": "The report", "content": {
              "application/json": {"schema": {"$ref": "#/components/schemas/ReportResponse"}},
              "text/csv": {"schema": {"type": "string"}}}}})  # fmt: skip
def get_report(principal: Principal, query: ReportQuery) -> Response:
    """Figures per group over whole UTC days, `from` and `to` included (at most 400 days), with
    `totals`. A school key sees its own campaigns, a publisher key its own traffic. Lead outcomes
    (`delivered`, `rejected`, `failed`, `returned`) and CPL spend are counted on the day the lead was
    accepted. Figures reach the report within a minute of the event. `format=csv` (or
    `Accept: text/csv`) answers CSV with a header row."""
    report = build_report(query, Scope.of(principal))
    if _wants_csv(query):
        response = Response(report_csv(report), mimetype="text/csv")
        response.headers["Content-Disposition"] = (
            f'attachment; filename="report-{query.from_.isoformat()}-{query.to.isoformat()}.csv"'
        )
        return response
    return Response(report_json(report), mimetype="application/json")
