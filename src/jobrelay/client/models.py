"""Typed views of what the API returns: `Job`, `Event`, `Page`, `Kind`, `User`.

Each model has the contract's fields as attributes and keeps the document exactly as the
server sent it (`to_dict()`), so nothing a newer server adds is lost; unknown fields are
also readable as attributes. Models are frozen: a job is a snapshot, `get()` a fresh one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

__all__ = ["TERMINAL_STATUSES", "Event", "Job", "JobError", "Kind", "Page", "User"]

TERMINAL_STATUSES = frozenset({"completed", "failed", "canceled"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse a document from the API, keeping it as sent."""
        model = cls.model_validate(data)
        model._raw = data
        return model

    def to_dict(self) -> dict[str, Any]:
        """The document as the API sent it (JSON types: ids and times are strings)."""
        return dict(self._raw) if self._raw else self.model_dump(mode="json")


class JobError(_Model):
    """Why a job failed: `code` (e.g. `insufficient_tokens`, `timeout`) and `message`."""

    code: str
    message: str = ""


class Job(_Model):
    """A job as the API describes it (see the contract's "Job" section)."""

    id: str
    kind: str
    status: str
    progress: int = 0
    message: str = ""
    user_id: int | None = None
    input: dict[str, Any] = Field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: JobError | None = None
    attempts: int = 0
    external_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    webhook: str | None = None
    webhook_events_filter: list[str] = Field(default_factory=list)
    created_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    duration_seconds: float | None = None
    urls: dict[str, str] = Field(default_factory=dict)

    _replayed: bool = PrivateAttr(default=False)

    @property
    def done(self) -> bool:
        """True once the job is `completed`, `failed` or `canceled`."""
        return self.status in TERMINAL_STATUSES

    @property
    def replayed(self) -> bool:
        """True when `submit` returned a job made earlier with the same idempotency key you
        passed (the API's `Idempotent-Replayed: true`)."""
        return self._replayed


class Event(_Model):
    """One event of a job's stream.

    Stored events (`type` `status`, `progress`, `callback`, `webhook`) have an `id` and carry
    the job's `status`, `progress` and `message` right after them. Live output events
    (`type` `output`) have no id and no status: `text` is appended at `offset` in the job's
    output; an `offset` of 0 starts the output over (a client that connects mid-run first
    gets all the text so far that way, and so does a retried attempt).
    """

    id: int | None = None
    job_id: str | None = None
    type: str
    status: str | None = None
    progress: int | None = None
    message: str | None = None
    at: dt.datetime | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def is_output(self) -> bool:
        return self.type == "output"

    @property
    def text(self) -> str:
        """The appended text of an `output` event ("" for other events)."""
        return str(self.data.get("text", "")) if self.is_output else ""

    @property
    def offset(self) -> int:
        """Where an `output` event's text goes: the output's length before it."""
        return int(self.data.get("offset", 0)) if self.is_output else 0

    @property
    def ends_job(self) -> bool:
        """True when the job was terminal right after this event."""
        return not self.is_output and self.status in TERMINAL_STATUSES


class Page(_Model):
    """One page of `GET /v1/jobs`: `items`, newest first, and `next_cursor` (None at the end)."""

    items: list[Job] = Field(default_factory=list)
    next_cursor: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        items = [Job.from_dict(item) for item in data.get("items") or []]
        page = cls.model_validate({**data, "items": items})
        page._raw = data
        return page


class Kind(_Model):
    """A job kind the service runs: `name`, `queue`, `input_schema` (JSON Schema),
    `deadline_seconds`."""

    name: str
    queue: str = "default"
    input_schema: dict[str, Any] = Field(default_factory=dict)
    deadline_seconds: int | None = None


class User(_Model):
    """The caller, from `GET /v1/me`."""

    id: int
    name: str
    role: str
    tokens: int = 0
    subscription_expires_at: dt.datetime | None = None
