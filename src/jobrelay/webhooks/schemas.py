"""Bodies of the deliveries endpoint."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, Field


class DeliveryOut(BaseModel):
    """One attempt to deliver one message; retries of a message share `webhook_id`."""

    id: int
    job_id: uuid.UUID
    webhook_id: str = Field(description="The `webhook-id` header; the same on every retry.")
    event_type: str = Field(description="job.started, job.progress, job.completed, ...")
    url: str
    attempt: int = Field(description="1 for the first try, then 2, 3, ...")
    outcome: str = Field(
        description="pending, sending, delivered, failed (non-2xx), timeout, error (network), "
        "gone (410: no more messages for this job), refused (address not allowed), skipped"
    )
    status_code: int | None = Field(description="The receiver's HTTP status, if it answered.")
    error: str | None
    duration_ms: float | None
    attempted_at: dt.datetime | None = Field(description="When the attempt was made.")
    next_attempt_at: dt.datetime | None = Field(
        description="When this pending attempt, or the retry after this one, is due."
    )


class DeliveryList(BaseModel):
    items: list[DeliveryOut]
