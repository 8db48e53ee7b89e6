"""Request and response bodies of the jobs API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from jobrelay.db.jobs import JobRow

JobKind = Literal["quiz.generate", "prompt.generate", "records.ingest"]
JobStatusName = Literal["queued", "processing", "completed", "failed", "canceled"]
WebhookEvent = Literal["start", "progress", "completed"]
EventType = Literal["status", "progress", "callback", "webhook"]


class JobCreate(BaseModel):
    """A submission. `input` is validated against the kind's own schema."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "prompt.generate",
                    "input": {"manual_prompt": "Write a friendly welcome email for new students"},
                    "webhook_events_filter": ["completed"],
                    "metadata": {"request_id": "abc-123"},
                }
            ]
        },
    )

    kind: JobKind
    input: dict[str, Any]
    webhook: str | None = Field(default=None, max_length=2048)
    webhook_events_filter: list[WebhookEvent] = Field(
        default_factory=lambda: list[WebhookEvent](["completed"]), max_length=3
    )
    metadata: dict[str, Any] = Field(default_factory=dict)
    user_id: int | None = Field(default=None, ge=1, le=2**62)
    deadline_seconds: int | None = Field(
        default=None,
        ge=30,
        le=86_400,
        description="Time a started job may take before it fails with `timeout` (kind default).",
    )

    @field_validator("metadata")
    @classmethod
    def _metadata_small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > 50:
            raise ValueError("metadata holds at most 50 keys")
        return value

    @field_validator("webhook_events_filter")
    @classmethod
    def _unique_events(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class JobError(BaseModel):
    code: str
    message: str


class JobUrls(BaseModel):
    self: str
    events: str
    result: str
    cancel: str


class JobOut(BaseModel):
    """The contract's job document."""

    id: uuid.UUID
    kind: str
    status: JobStatusName
    progress: int
    message: str
    user_id: int
    input: dict[str, Any]
    result: dict[str, Any] | None
    error: JobError | None
    attempts: int
    external_id: str | None
    metadata: dict[str, Any]
    webhook: str | None
    webhook_events_filter: list[str]
    created_at: dt.datetime
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    duration_seconds: float | None
    urls: JobUrls

    @classmethod
    def from_row(cls, row: JobRow) -> JobOut:
        duration = None
        if row.started_at is not None and row.completed_at is not None:
            duration = round((row.completed_at - row.started_at).total_seconds(), 3)
        base = f"/v1/jobs/{row.id}"
        return cls.model_construct(
            id=row.id,
            kind=row.kind,
            status=row.status,
            progress=row.progress,
            message=row.message,
            user_id=row.user_id,
            input=row.input,
            result=row.result,
            error=JobError.model_construct(**row.error) if row.error else None,
            attempts=row.attempts,
            external_id=row.external_id,
            metadata=row.metadata,
            webhook=row.webhook,
            webhook_events_filter=list(row.webhook_events_filter or []),
            created_at=row.created_at,
            started_at=row.started_at,
            completed_at=row.completed_at,
            duration_seconds=duration,
            urls=JobUrls.model_construct(
                self=base, events=f"{base}/events", result=f"{base}/result", cancel=f"{base}/cancel"
            ),
        )


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


class EventOut(BaseModel):
    id: int
    job_id: uuid.UUID
    type: EventType
    status: JobStatusName
    progress: int
    message: str
    at: dt.datetime
    data: dict[str, Any]


class EventList(BaseModel):
    items: list[EventOut]


class ResultOut(BaseModel):
    """Kind-specific; see the contract's job kinds."""

    model_config = ConfigDict(extra="allow")
