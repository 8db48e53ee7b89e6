"""SQL for the callback audit log, and for finding the job a generator's task belongs to."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from jobrelay.db.models import Callback, jobs_table

callbacks = Callback.__table__

__all__ = ["applied_with_webhook_id", "find_job_id_by_task", "list_for_job", "record"]


async def record(conn: AsyncConnection, values: dict[str, Any]) -> int | None:
    """Store one received callback; None if an applied one with the same webhook-id exists.

    `job_id` is kept only if that job exists, so a callback naming an unknown job is still
    recorded (unlinked) instead of breaking the foreign key.
    """
    job_id = values.get("job_id")
    linked = (
        select(jobs_table.c.id).where(jobs_table.c.id == job_id).scalar_subquery()
        if job_id is not None
        else None
    )
    stmt = (
        insert(Callback)
        .values(**{**values, "job_id": linked})
        .on_conflict_do_nothing(
            index_elements=[callbacks.c.webhook_id],
            index_where=text("webhook_id IS NOT NULL AND applied"),
        )
        .returning(callbacks.c.id)
    )
    inserted: int | None = (await conn.execute(stmt)).scalar_one_or_none()
    return inserted


async def applied_with_webhook_id(conn: AsyncConnection, webhook_id: str) -> Row[Any] | None:
    """The callback that was applied under `webhook_id`, if any: a resend must not act twice."""
    stmt = select(*callbacks.c).where(callbacks.c.webhook_id == webhook_id, callbacks.c.applied)
    return (await conn.execute(stmt)).first()


async def list_for_job(
    conn: AsyncConnection, job_id: uuid.UUID, *, limit: int = 1000
) -> Sequence[Row[Any]]:
    stmt = (
        select(*callbacks.c)
        .where(callbacks.c.job_id == job_id)
        .order_by(callbacks.c.received_at, callbacks.c.id)
        .limit(limit)
    )
    return (await conn.execute(stmt)).all()


async def find_job_id_by_task(
    conn: AsyncConnection, task_id: str, kinds: Sequence[str]
) -> uuid.UUID | None:
    """The job of one of `kinds` whose generator task is `task_id` (its `external_id`), or
    whose id it is."""
    jobs = jobs_table
    matches = [jobs.c.external_id == task_id]
    with contextlib.suppress(ValueError):
        matches.append(jobs.c.id == uuid.UUID(task_id))
    stmt = (
        select(jobs.c.id)
        .where(jobs.c.kind.in_(kinds), or_(*matches))
        .order_by(jobs.c.created_at.desc())
        .limit(1)
    )
    found: uuid.UUID | None = (await conn.execute(stmt)).scalar_one_or_none()
    return found


async def job_kind(conn: AsyncConnection, job_id: uuid.UUID) -> str | None:
    """The kind of a job, None if there is no such job."""
    stmt = select(jobs_table.c.kind).where(jobs_table.c.id == job_id)
    kind: str | None = (await conn.execute(stmt)).scalar_one_or_none()
    return kind
