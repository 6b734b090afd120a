"""Declaring an endpoint once: its route, roles, request and response schemas.

The same pydantic models validate requests and describe them in
``GET /openapi.json``; handlers receive parsed values and return models.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, wraps
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from pydantic import BaseModel

from adserver.api import idempotency
from adserver.api.limits import RouteLimits, check_route
from adserver.auth import Principal, authenticate
from adserver.errors import ApiError
from adserver.validation import parse_body, parse_model

PUBLIC: tuple[str, ...] = ()


@dataclass
class Operation:
    method: str
    path: str
    summary: str
    tag: str
    roles: tuple[str, ...]
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    allow_publishable: bool
    errors: tuple[int, ...]
    partial: bool = False
    description: str = ""
    extra_responses: dict[str, Any] = field(default_factory=dict)


OPERATIONS: list[Operation] = []


def json_body_bytes() -> bytes:
    """The request body, once it is said to be JSON and is not empty (415 or 400 otherwise)."""
    raw = request.get_data(cache=True)
    mimetype = request.mimetype or ""
    if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    if not raw.strip():
        raise ApiError(400, "malformed_body", "The request body must be a JSON object.")
    return raw


def read_json_body() -> Any:
    raw = json_body_bytes()
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(400, "malformed_body", "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_body", "The request body must be a JSON object.")
    return data


@cache
def _query_keys(model: type[BaseModel]) -> tuple[str, ...]:
    """The parameter name of each field of a query model: its alias (``from``, a Python keyword) or its name."""
    return tuple(info.alias or name for name, info in model.model_fields.items())


def _query_dict(model: type[BaseModel]) -> dict[str, Any]:
    args = request.args
    return {key: args.get(key) for key in _query_keys(model) if key in args}


def render(result: Any, status: int) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, BaseModel):
        return Response(result.model_dump_json(), status=status, mimetype="application/json")
    response = jsonify(result)
    response.status_code = status
    return response


def endpoint(
    bp: Blueprint,
    method: str,
    rule: str,
    *,
    summary: str,
    roles: tuple[str, ...],
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    allow_publishable: bool = False,
    partial: bool = False,
    errors: tuple[int, ...] = (),
    description: str = "",
    extra_responses: dict[str, Any] | None = None,
    limits: RouteLimits | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Response]]:
    """Register a route and its OpenAPI operation.

    The handler is called with ``principal`` (on routes that need a key), ``body``
    and ``query`` (parsed models, when declared; a raw dict for a partial body)
    and the URL parameters.
    A request is counted against ``limits`` once its key is known (see ``api.limits``).
    Mutating POSTs honour ``Idempotency-Key``.
    """
    path = rule.replace("<", "{").replace(">", "}")
    for converter in ("string:", "path:"):
        path = path.replace("{" + converter, "{")

    # Any key may be refused for its address's failed authentications, and any body for its size; what a
    # query or body model refuses is 422, a malformed cursor is 400, and a request line over gunicorn's
    # limit (4 KB) is 414 before the app sees it. An Idempotency-Key (POST) may be malformed (400), in use
    # by a request still running (409) or already used with another request (422).
    takes_cursor = query is not None and "cursor" in query.model_fields
    errors = tuple(sorted({
        *errors, *((429,) if roles or limits else ()), *((413, 422) if body else ()), *((414, 422) if query else ()),
        *((400,) if takes_cursor else ()), *((400, 409, 422) if method.upper() == "POST" else ()),
    }))  # fmt: skip

    def decorate(handler: Callable[..., Any]) -> Callable[..., Response]:
        OPERATIONS.append(
            Operation(
                method=method.lower(),
                path=path,
                summary=summary,
                tag=bp.name,
                roles=roles,
                body=body,
                query=query,
                response=response,
                status=status,
                allow_publishable=allow_publishable,
                errors=errors,
                partial=partial,
                description=description or (handler.__doc__ or "").strip(),
                extra_responses=extra_responses or {},
            )
        )

        @wraps(handler)
        def view(**url_params: Any) -> Response:
            principal: Principal | None = None
            if roles:
                principal = authenticate(roles, allow_publishable=allow_publishable)
                g.principal = principal
            if limits is not None:
                # A secret key counts per key; browser traffic (a publishable key, or none) per client IP.
                check_route(limits, principal.key_id if principal is not None and principal.kind == "secret" else None)
            kwargs: dict[str, Any] = dict(url_params)
            if roles:
                kwargs["principal"] = principal
            if query is not None:
                kwargs["query"] = parse_model(query, _query_dict(query))

            def run() -> Response:
                if body is not None:
                    # A partial (PATCH) body is merged into the current object by the service,
                    # which validates the result against the full model; a whole body is parsed
                    # and validated in one pass.
                    kwargs["body"] = read_json_body() if partial else parse_body(body, json_body_bytes())
                return render(handler(**kwargs), status)

            if method.upper() == "POST" and request.headers.get("Idempotency-Key") is not None:
                return idempotency.replay_or_run(principal, run)
            return run()

        bp.add_url_rule(rule, endpoint=handler.__name__, view_func=view, methods=[method.upper()])
        return view

    return decorate
