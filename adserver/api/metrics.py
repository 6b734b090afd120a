"""``GET /metrics``: Prometheus' text format, for the holder of ``METRICS_TOKEN``.

The figures tell traffic, fill and lead volumes, which are nobody's business but the operator's,
and a scrape reads Redis and the database. So with ``METRICS_TOKEN`` set the token is required as
a bearer token; without it, metrics are served only on the embedded defaults (a development
machine) and refused everywhere else, saying which setting turns them on.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST

from adserver.errors import ApiError
from adserver.metrics import exposition

bp = Blueprint("metrics", __name__)


def _require_metrics_token() -> None:
    token: str | None = current_app.config["METRICS_TOKEN"]
    if token is None:
        if current_app.config["SETTINGS"].embedded:
            return
        raise ApiError(403, "forbidden", "Metrics are served only when METRICS_TOKEN is set.")
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
        raise ApiError(401, "unauthorized", "Send the metrics token as 'Authorization: Bearer <METRICS_TOKEN>'.",
                       headers={"WWW-Authenticate": "Bearer"})  # fmt: skip


@bp.get("/metrics")
def metrics() -> Response:
    _require_metrics_token()
    return Response(exposition.render(), content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
