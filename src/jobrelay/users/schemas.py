"""Bodies of the users and `/v1/me` endpoints."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["user", "admin"]


class UserCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "alice", "role": "user", "tokens": 5000}]},
    )

    name: str = Field(min_length=1, max_length=200)
    role: Role = "user"
    tokens: int = Field(default=0, ge=0, le=2**53)
    subscription_expires_at: dt.datetime | None = None


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
