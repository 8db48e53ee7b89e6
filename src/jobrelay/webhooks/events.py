"""Which job events a webhook subscriber hears about, and the message each one becomes.

Filter names (`webhook_events_filter`) and message types:

    start      job.started     a worker claimed the job (each attempt)
    progress   job.progress    progress was reported (at most one message per interval)
    completed  job.completed   the job ended: job.completed, job.failed or job.canceled
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from jobrelay.db.jobs import JobRow
from jobrelay.jobs.schemas import JobOut
from jobrelay.jobs.states import JobStatus, is_terminal

START = "start"
PROGRESS = "progress"
COMPLETED = "completed"

PROGRESS_TYPE = "job.progress"
_ENDING_TYPES = {
    JobStatus.COMPLETED.value: "job.completed",
    JobStatus.FAILED.value: "job.failed",
    JobStatus.CANCELED.value: "job.canceled",
}
JOB_FIELDS = tuple(JobOut.model_fields)


def subscription_of(event: dict[str, Any]) -> str | None:
    """The filter name an event belongs to, or None for events nobody subscribes to."""
    status = str(event["status"])
    if is_terminal(status):
        return COMPLETED
    if status != JobStatus.PROCESSING.value:
        return None
    return START if event["type"] == "status" else PROGRESS


def message_type(subscription: str, status: str) -> str:
    if subscription == START:
        return "job.started"
    if subscription == PROGRESS:
        return PROGRESS_TYPE
    return _ENDING_TYPES[status]


def _utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def message(job: JobRow, event: dict[str, Any], type_: str) -> dict[str, Any]:
    """The webhook body: `{"type", "timestamp", "data": <the job as the API returns it>}`."""
    at = event.get("at")
    return {
        "type": type_,
        "timestamp": _utc(at if isinstance(at, dt.datetime) else dt.datetime.now(dt.UTC)),
        "data": JobOut.from_row(job).model_dump(mode="json"),
    }


def ordered(payload: dict[str, Any]) -> dict[str, Any]:
    """Put a stored message back in the contract's key order (JSONB keeps its own order)."""
    data = payload.get("data")
    if isinstance(data, dict):
        data = {
            **{name: data[name] for name in JOB_FIELDS if name in data},
            **{name: value for name, value in data.items() if name not in JOB_FIELDS},
        }
    front: dict[str, Any] = {k: payload[k] for k in ("type", "timestamp") if k in payload}
    rest = {k: v for k, v in payload.items() if k not in ("type", "timestamp", "data")}
    return {**front, "data": data, **rest}
