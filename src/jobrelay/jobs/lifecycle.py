"""Every change of a job's status goes through `move`, which enforces the transition table,
stores the event, and lines up what must follow the commit (publish, enqueue, free slots)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement

from jobrelay.db import jobs as jobs_db
from jobrelay.db.jobs import ChangedJob, EventSpec, JobRow
from jobrelay.db.models import jobs_table as jobs
from jobrelay.jobs.states import JobStatus, is_terminal, sources_of
from jobrelay.tx import Tx
from jobrelay.webhooks import outbox

QUEUED_MESSAGE = "Task queued, waiting to start..."


async def move(
    tx: Tx,
    job_id: uuid.UUID,
    target: JobStatus,
    *,
    message: str,
    values: dict[str, Any] | None = None,
    where: Iterable[ColumnElement[bool]] = (),
    event_type: str = "status",
    data: dict[str, Any] | None = None,
    max_running_per_user: int | None = None,
) -> JobRow | None:
    """Move a job to `target` if the table allows it from its current status; None otherwise.

    Reaching a terminal state frees a running slot: the owner's oldest parked job is released.
    """
    changes: dict[str, Any] = {"status": target.value, "message": message, **(values or {})}
    if is_terminal(target):
        changes.setdefault("completed_at", jobs_db.now_expression())
        changes.setdefault("lease_expires_at", None)
    changed = await jobs_db.change_job(
        tx.conn,
        job_id,
        values=changes,
        where=[jobs_db.status_in(sources_of(target)), *where],
        event=EventSpec(event_type, data or {}),
    )
    if not isinstance(changed, ChangedJob):
        return None
    row = tx.record(changed)
    await outbox.record(tx, changed)
    if is_terminal(target) and max_running_per_user is not None:
        tx.enqueue.extend(
            await jobs_db.unpark_next(tx.conn, user_id=row.user_id, limit=max_running_per_user)
        )
    return row


async def report_progress(
    tx: Tx,
    job_id: uuid.UUID,
    *,
    progress: int,
    message: str,
    where: Iterable[ColumnElement[bool]] = (),
    values: dict[str, Any] | None = None,
    event_type: str = "progress",
    data: dict[str, Any] | None = None,
    without_input: bool = False,
) -> JobRow | None:
    """Progress of a processing job; never lower than what is stored. None if not processing.
    `without_input`: the row comes back with `input` NULL (see `jobs_db.change_job`)."""
    changed = await jobs_db.change_job(
        tx.conn,
        job_id,
        values={
            "progress": jobs_db.progress_at_least(progress),
            "message": message,
            **(values or {}),
        },
        where=[jobs_db.status_is(JobStatus.PROCESSING.value), *where],
        event=EventSpec(event_type, data or {}),
        without_input=without_input,
    )
    if not isinstance(changed, ChangedJob):
        return None
    await outbox.record(tx, changed)
    return tx.record(changed)


def requeue_values(max_attempts: int) -> dict[str, Any]:
    """A retried job starts a fresh run: progress from 0, a new attempt budget, no old outcome."""
    return {
        "progress": 0,
        "result": None,
        "error": None,
        "started_at": None,
        "completed_at": None,
        "deadline_at": None,
        "lease_expires_at": None,
        "parked": False,
        "max_attempts": jobs.c.attempts + max_attempts,
    }
