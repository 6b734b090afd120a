"""Validating data against a pydantic model, turning failures into one field-level 422, and merging
PATCH bodies into the object they change."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from adserver.errors import ApiError, validation_error

M = TypeVar("M", bound=BaseModel)


def errors_to_fields(exc: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for error in exc.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in error["loc"] if not str(part).startswith("function-")) or "body"
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        fields.setdefault(path, message.removeprefix("Value error, "))
    return fields


def parse_model(model: type[M], data: Any) -> M:
    """Validate ``data`` against ``model``; 422 ``validation_error`` naming each failing field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(errors_to_fields(exc)) from None


def parse_body(model: type[M], body: bytes | dict[str, Any]) -> M:
    """Validate a JSON request body (its bytes, or a PATCH merged into its object) against ``model``,
    strictly: a JSON type other than the document's (``0`` for a boolean, ``"5"`` for a number) is
    refused, not converted. 400 ``malformed_body`` for bytes that are not a JSON object, else 422
    ``validation_error`` naming each failing field."""
    try:
        return model.model_validate_json(body if isinstance(body, bytes) else json.dumps(body), strict=True)
    except ValidationError as exc:
        kinds = {error["type"] for error in exc.errors(include_url=False, include_input=False) if not error["loc"]}
        if "json_invalid" in kinds:
            raise ApiError(400, "malformed_body", "The request body is not valid JSON.") from None
        if "model_type" in kinds:
            raise ApiError(400, "malformed_body", "The request body must be a JSON object.") from None
        raise validation_error(errors_to_fields(exc)) from None


def merge_patch(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A PATCH body merged into the current object: objects merge key by key; everything else
    (lists included) is replaced."""
    merged = dict(current)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = value
    return merged
