"""The one error type of the API and its JSON shape.

Every failure is ``{"error": {"code", "message", "fields"?}}`` with the
status the contract names; nothing a client sends may produce a 500.
"""

from __future__ import annotations

import logging

import redis
from flask import Flask, Response, jsonify
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.headers = headers or {}

    def to_response(self) -> Response:
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        response = jsonify({"error": body})
        response.status_code = self.status
        for name, value in self.headers.items():
            response.headers[name] = value
        return response


def validation_error(fields: dict[str, str], message: str = "The request has invalid fields.") -> ApiError:
    return ApiError(422, "validation_error", message, fields)


def not_found(what: str = "resource") -> ApiError:
    return ApiError(404, "not_found", f"No such {what}.")


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, lambda exc: exc.to_response())

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        response = ApiError(status, code, exc.description or code).to_response()
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response

    @app.errorhandler(OperationalError)
    @app.errorhandler(redis.ConnectionError)
    @app.errorhandler(redis.TimeoutError)
    @app.errorhandler(redis.ResponseError)
    def unavailable(exc: Exception) -> Response:
        if isinstance(exc, DBAPIError) and not isinstance(exc, OperationalError):
            return unexpected(exc)
        # A full Redis (noeviction) refuses writes with OOM, inside a script too; any other error is ours.
        if isinstance(exc, redis.ResponseError) and "OOM" not in str(exc):
            return unexpected(exc)
        log.warning("dependency unavailable: %s", type(exc).__name__)
        return ApiError(
            503, "service_unavailable", "A backing service is unavailable; try again shortly.",
            headers={"Retry-After": "5"},
        ).to_response()  # fmt: skip

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return ApiError(500, "internal_error", "Something went wrong on our side.").to_response()
