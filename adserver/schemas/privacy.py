"""Privacy request and answer models: opt-out and erase requests, and schools' opt-out notices."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from adserver.schemas.common import AwareTime, Cursor, Id, In, Out
from adserver.schemas.leads import Email, Phone


class PersonIn(In):
    """The person a privacy request is for: their email, their phone, or both."""

    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": ["email"], "properties": {"email": {"type": "string"}}},
        {"required": ["phone"], "properties": {"phone": {"type": "string"}}},
    ]})  # fmt: skip

    email: Email | None = Field(None, description="Compared case-insensitively, as duplicate checks do.")
    phone: Phone | None = Field(None, description="A US or Canada number in any common format (compared in E.164).")

    @model_validator(mode="after")
    def _names_someone(self) -> PersonIn:
        if self.email is None and self.phone is None:
            raise ValueError("give the person's email, phone or both")
        return self


class PrivacyRequestOut(Out):
    leads_affected: int = Field(
        description="How many of the person's leads the request found: for an erase, the leads it erased."
    )


class OptOutNoticeOut(Out):
    """A school's notice that a person opted out: the person's leads the school may have."""

    id: str
    type: Literal["opt_out"] = "opt_out"
    school_id: str
    lead_ids: list[str]
    requested_at: datetime


class OptOutsQuery(In):
    since: AwareTime | None = Field(None, description="Only notices of requests at or after this time (ISO-8601).")
    school_id: Id | None = Field(None, description="Admin only: one school's notices.")
    limit: int = Field(50, ge=1, le=500)
    cursor: Cursor | None = None
