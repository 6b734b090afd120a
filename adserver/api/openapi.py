"""``GET /openapi.json``, built from the same models that validate requests."""

from __future__ import annotations

import copy
from typing import Any

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel

from adserver.api.endpoint import OPERATIONS, Operation
from adserver.api.idempotency import IDEMPOTENCY_KEY_PATTERN
from adserver.schemas.common import ErrorResponse

bp = Blueprint("openapi", __name__)

_STATUS_TEXT = {
    200: "OK", 201: "Created", 302: "Found", 400: "Malformed request", 401: "Missing or unknown key",
    403: "Key of the wrong role", 404: "Not found", 409: "Conflict", 410: "Expired", 413: "Body too large",
    414: "Request line too long",
    415: "Not JSON", 422: "Validation failed", 429: "Rate limited", 503: "Backing service unavailable",
}  # fmt: skip
_REF = "#/components/schemas/{model}"


def _schema(model: type[BaseModel], components: dict[str, Any], mode: str) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=_REF, mode=mode)  # type: ignore[arg-type]
    for name, definition in schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    name = model.__name__.replace("[", "_").replace("]", "")
    components.setdefault(name, schema)
    return {"$ref": _REF.format(model=name)}


def _without_required(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_required(v) for k, v in schema.items() if k != "required"}
    if isinstance(schema, list):
        return [_without_required(item) for item in schema]
    return schema


def _parameters(op: Operation, components: dict[str, Any]) -> list[dict[str, Any]]:
    params = [
        {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
        for part in op.path.split("/")
        if part.startswith("{")
    ]
    if op.query is not None:
        schema = op.query.model_json_schema(ref_template=_REF)
        for name, definition in schema.pop("$defs", {}).items():
            components.setdefault(name, definition)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    return params


def build_openapi() -> dict[str, Any]:
    components: dict[str, Any] = {}
    error_ref = _schema(ErrorResponse, components, "serialization")
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        responses: dict[str, Any] = {}
        if op.response is not None:
            responses[str(op.status)] = {
                "description": _STATUS_TEXT.get(op.status, "OK"),
                "content": {"application/json": {"schema": _schema(op.response, components, "serialization")}},
            }
        else:
            responses[str(op.status)] = {"description": _STATUS_TEXT.get(op.status, "OK")}
        responses.update(copy.deepcopy(op.extra_responses))
        for status in op.errors:
            # gunicorn answers 414 itself, in HTML, before the app sees the request.
            content = {"text/html": {"schema": {"type": "string"}}} if status == 414 else {
                "application/json": {"schema": error_ref}}  # fmt: skip
            responses[str(status)] = {"description": _STATUS_TEXT.get(status, "Error"), "content": content}
        operation: dict[str, Any] = {
            "operationId": f"{op.method}_{op.path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}",
            "summary": op.summary,
            "description": op.description,
            "tags": [op.tag],
            "parameters": _parameters(op, components),
            "responses": responses,
        }
        if op.roles:
            operation["security"] = [{"secretKey": []}] + ([{"publishableKey": []}] if op.allow_publishable else [])
            operation["x-roles"] = list(op.roles)
        if op.body is not None:
            body_schema = _schema(op.body, components, "validation")
            if op.partial:
                full = components[op.body.__name__]
                name = f"{op.body.__name__}Patch"
                components.setdefault(name, _without_required(full))
                body_schema = {"$ref": _REF.format(model=name)}
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body_schema}}}
        if op.method == "post":
            operation["parameters"].append(
                {"name": "Idempotency-Key", "in": "header", "required": False,
                 "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
                 "description": "A repeat with the same key and body within a day returns the first answer."}
            )  # fmt: skip
        paths.setdefault(op.path, {})[op.method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "adserver",
            "version": "1.0.0",
            "description": "Lead-generation ad server for higher-education marketing.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "secretKey": {"type": "http", "scheme": "bearer", "description": "sk_... secret key"},
                "publishableKey": {"type": "apiKey", "in": "header", "name": "X-Publisher-Key"},
            },
        },
    }


_document: dict[str, Any] | None = None


@bp.get("/openapi.json")
def openapi_document() -> Response:
    global _document
    if _document is None:
        _document = build_openapi()
    return jsonify(_document)
