"""Shapes shared by every endpoint: strict input models, errors, pages."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Generic, TypeVar
from urllib.parse import urlparse

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

T = TypeVar("T")


class In(BaseModel):
    """Request bodies: unknown fields are refused, strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_EXCEPT_LINE_BREAKS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _no_control_chars(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def _no_control_chars_but_line_breaks(value: str) -> str:
    if _CONTROL_EXCEPT_LINE_BREAKS.search(value):
        raise ValueError("must not contain control characters")
    return value


SINGLE_LINE = AfterValidator(_no_control_chars)
MULTI_LINE = AfterValidator(_no_control_chars_but_line_breaks)


def _http_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError("must be an http or https URL")
    return value


def _with_offset(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must include a UTC offset, e.g. 2026-11-01T00:00:00Z")
    return value


# A moment a client names (``since=``): without an offset it would mean no one moment.
AwareTime = Annotated[datetime, AfterValidator(_with_offset)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200), SINGLE_LINE]
HttpUrl = Annotated[str, StringConstraints(max_length=2048), AfterValidator(_http_url)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: dict[str, str] | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None


class PageQuery(In):
    limit: int = Field(50, ge=1, le=500)
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None
