"""Shapes shared by every endpoint: strict input models, errors, pages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

T = TypeVar("T")


class In(BaseModel):
    """Request bodies: unknown fields are refused, strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# What an input model trims from both ends of a string before checking it (Unicode White_Space).
_TRIMMED = r"\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def trimmed_pattern(forbidden: str, shortest: int = 1, longest: int | None = None) -> str:
    """The pattern of what a client may send for a string that is trimmed and must then be ``shortest``
    to ``longest`` characters outside ``forbidden`` (a bracket expression's inside): the document
    describes the raw value, the code checks the trimmed one, so the bounds on the length are in the
    pattern (a ``maxLength`` would count the whitespace that the code trims away)."""
    edge = f"[^{forbidden}{_TRIMMED}]"
    # Two edge characters around what lies between them (none when the value is one character long).
    between = f"[^{forbidden}]{{{max(shortest - 2, 0)},{'' if longest is None else longest - 2}}}"
    if longest == 1:
        value = edge
    elif shortest >= 2:
        value = f"{edge}{between}{edge}"
    else:
        value = f"{edge}(?:{between}{edge})?"
    if shortest == 0:
        value = f"(?:{value})?"
    return f"^[{_TRIMMED}]*{value}[{_TRIMMED}]*$"


@dataclass(frozen=True)
class DocumentedPattern:
    """Adds ``pattern`` to a string's JSON schema without changing how it is validated: for a check that
    a validator makes with its own message, which the document must still state."""

    pattern: str

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {**handler(schema), "pattern": self.pattern}


@dataclass(frozen=True)
class NoControlChars:
    """A text field that refuses the ``forbidden`` characters (a bracket expression's inside) with a
    message of its own, and says so in the document: a pattern of the raw value, which may carry
    whitespace around a value of the field's lengths."""

    forbidden: str

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        found = re.compile(f"[{self.forbidden}]").search

        def refuse_control_chars(value: str) -> str:
            if found(value):
                raise ValueError("must not contain control characters")
            return value

        return core_schema.no_info_after_validator_function(refuse_control_chars, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = dict(handler(schema))
        shortest, longest = json_schema.pop("minLength", 0), json_schema.pop("maxLength", None)
        return {**json_schema, "pattern": trimmed_pattern(self.forbidden, shortest, longest)}


SINGLE_LINE = NoControlChars(r"\x00-\x1f\x7f")
MULTI_LINE = NoControlChars(r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f")  # tab, line feed and carriage return allowed

# An http(s) URL with a host: the scheme (any case), a host of letters, digits, dots and dashes,
# an optional port, then an optional path, query or fragment without spaces or control characters.
_HTTP_URL = re.compile(r"[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?#][^\x00-\x20\x7f]*)?")


def _http_url(value: str) -> str:
    if not _HTTP_URL.fullmatch(value):
        raise ValueError("must be an http or https URL")
    return value


def _not_padded(value: Any) -> Any:
    # Input models trim strings; a value whose document allows no spaces at all (an id, an enum) is
    # checked as sent, so that " x" is refused as the document says rather than trimmed.
    if isinstance(value, str) and value != value.strip():
        raise ValueError("must not begin or end with whitespace")
    return value


NOT_PADDED = BeforeValidator(_not_padded)
URL_LONGEST = 2048


def _url_length_as_sent(value: Any) -> Any:
    # Counted before trimming, as the document's maxLength counts.
    if isinstance(value, str) and len(value) > URL_LONGEST:
        raise ValueError(f"must be at most {URL_LONGEST} characters")
    return value


def _iso_8601(value: Any) -> Any:
    # pydantic would also read a number ("0.5") as seconds since 1970; the document says ISO-8601.
    if not isinstance(value, str):
        raise ValueError("must be an ISO-8601 date and time, e.g. 2026-11-01T00:00:00Z")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO-8601 date and time, e.g. 2026-11-01T00:00:00Z") from None
    return value


def _with_offset(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must include a UTC offset, e.g. 2026-11-01T00:00:00Z")
    return value


# A moment a client names (``since=``): without an offset it would mean no one moment.
AwareTime = Annotated[datetime, BeforeValidator(_iso_8601), AfterValidator(_with_offset)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200), SINGLE_LINE]
HttpUrl = Annotated[str, StringConstraints(max_length=URL_LONGEST), BeforeValidator(_url_length_as_sent),
                    AfterValidator(_http_url),
                    DocumentedPattern(f"^[{_TRIMMED}]*{_HTTP_URL.pattern}[{_TRIMMED}]*$")]  # fmt: skip
Id = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$"), NOT_PADDED]
# A page's cursor: opaque, in the URL-safe base64 alphabet the API writes it in.
Cursor = Annotated[str, StringConstraints(max_length=300, pattern=r"^[A-Za-z0-9_-]*$"), NOT_PADDED]


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
    cursor: Cursor | None = None
