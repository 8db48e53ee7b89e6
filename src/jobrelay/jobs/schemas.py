"""Request and response bodies of the jobs API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from annotated_types import Ge, Le
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    Strict,
    field_validator,
)

from jobrelay.db.jobs import JobRow
from jobrelay.validation import integral

# Any registered kind (checked by the service, so an unknown one is `unknown_kind`); the
# OpenAPI document lists the registered ones (jobrelay.kinds.openapi).
JobKind = Annotated[str, Field(min_length=1, max_length=64)]
JobStatusName = Literal["queued", "processing", "completed", "failed", "canceled"]
WebhookEvent = Literal["start", "progress", "completed"]
EventType = Literal["status", "progress", "callback", "webhook"]


def _any_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("input must be an object")
    return value


# Checked against the kind's own model after parsing (so the errors name the kind); the OpenAPI
# document shows one named submission schema per kind (jobrelay.kinds.openapi).
KindInput = Annotated[
    dict[str, Any],
    PlainValidator(_any_object, json_schema_input_type=dict[str, Any]),
]


class JobCreate(BaseModel):
    """A submission. `input` is validated against the kind's own schema."""

    model_config = ConfigDict(extra="forbid")

    kind: JobKind
    input: KindInput
    webhook: str | None = Field(
        default=None,
        max_length=2048,
        json_schema_extra={"format": "uri", "pattern": "^https?://"},
        description="An http(s) URL whose host resolves to public addresses only.",
    )
    webhook_events_filter: list[WebhookEvent] = Field(
        default_factory=lambda: list[WebhookEvent](["completed"]), max_length=3
    )
    metadata: dict[str, Any] = Field(default_factory=dict, json_schema_extra={"maxProperties": 50})
    user_id: Annotated[int, Strict(), Ge(1), Le(2**62), BeforeValidator(integral)] | None = None
    deadline_seconds: (
        Annotated[int, Strict(), Ge(30), Le(86_400), BeforeValidator(integral)] | None
    ) = Field(
        default=None,
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
