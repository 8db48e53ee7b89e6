"""Response shapes of the callback routes and of a job's callback audit trail."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict


class CallbackReply(BaseModel):
    """`saved` and `user_id` come with a result; `progress` with a progress report; a
    delegated kind's result handler may add fields of its own."""

    model_config = ConfigDict(extra="allow")

    status: str
    task_id: str
    saved: int | None = None
    user_id: int | None = None
    progress: int | None = None
    replayed: bool | None = None


class CallbackOut(BaseModel):
    """One received callback as audited: accepted, resent or refused."""

    id: int
    route: str
    webhook_id: str | None
    kind: str
    outcome: str
    status_code: int
    applied: bool
    received_at: dt.datetime
    headers: dict[str, str]
    body: str


class CallbackList(BaseModel):
    items: list[CallbackOut]
