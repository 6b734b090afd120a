"""Structured (JSON) logs, each request's lines carrying its request id. Never log personal data.

Work done later on a request's behalf (a lead's delivery attempts in a Celery worker) carries the
same id: the lead keeps it, and the worker binds it around the attempt (``bound_request_id``).
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from flask import Flask, Response, g, has_request_context, request

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
# The request id of work done outside the request, on its behalf.
_bound_request_id: ContextVar[str | None] = ContextVar("bound_request_id", default=None)


@contextmanager
def bound_request_id(request_id: str | None) -> Iterator[None]:
    """Every log line written in the block carries ``request_id`` (when there is one)."""
    token = _bound_request_id.set(request_id)
    try:
        yield
    finally:
        _bound_request_id.reset(token)


def current_request_id() -> str | None:
    """The id of the request being served, or of the request whose work is being done."""
    if has_request_context() and "request_id" in g:
        return str(g.request_id)
    return _bound_request_id.get()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = current_request_id()
        if request_id is not None:
            entry["request_id"] = request_id
        entry.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)


def init_request_ids(app: Flask) -> None:
    @app.before_request
    def assign_request_id() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex

    @app.after_request
    def echo_request_id(response: Response) -> Response:
        if "request_id" in g:
            response.headers["X-Request-Id"] = g.request_id
        return response
