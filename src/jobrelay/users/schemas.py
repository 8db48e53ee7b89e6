"""Bodies of the users and `/v1/me` endpoints."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from jobrelay.validation import JsonInt

Role = Literal["user", "admin"]
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339(value: Any) -> Any:
    """Only what the schema promises (`format: date-time`): not Unix seconds, not a bare date."""
    if isinstance(value, dt.datetime) or (isinstance(value, str) and _RFC3339.fullmatch(value)):
        return value
    raise ValueError("must be a date-time with a time zone, like 2026-01-31T12:00:00Z")


Timestamp = Annotated[dt.datetime, BeforeValidator(_rfc3339)]


class UserCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "alice", "role": "user", "tokens": 5000}]},
    )

    name: str = Field(min_length=1, max_length=200)
    role: Role = "user"
    tokens: JsonInt = Field(default=0, ge=0, le=2**53)
    subscription_expires_at: Timestamp | None = None


class UserOut(BaseModel):
    id: int
    name: str
    role: Role
    tokens: int
    subscription_expires_at: dt.datetime | None
    created_at: dt.datetime


class MeOut(BaseModel):
    id: int
    name: str
    role: Role
    tokens: int
    subscription_expires_at: dt.datetime | None


class UserCreated(BaseModel):
    user: UserOut
    api_key: str = Field(description="Shown this once; only its hash is stored.")


class UserPage(BaseModel):
    items: list[UserOut]
    next_cursor: str | None


class WebhookSecretOut(BaseModel):
    secret: str = Field(description="Signs the caller's outgoing webhooks (Standard Webhooks).")
