"""SQL for `jobrelay db seed`: demo rows written in bulk, with their own timestamps."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Integer, Row, cast, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from jobrelay.db.models import job_events_table as events
from jobrelay.db.models import jobs_table as jobs
from jobrelay.db.models import questions_table as questions
from jobrelay.db.models import students_table as students

__all__ = [
    "SEED_BATCH_KEY",
    "insert_events",
    "insert_jobs",
    "insert_questions",
    "insert_students",
    "last_seed_batch",
    "set_result",
]

SEED_BATCH_KEY = "seed_batch"


async def last_seed_batch(conn: AsyncConnection) -> int:
    """The highest seed batch number stored in job metadata; 0 before the first seed."""
    stmt = select(
        func.coalesce(func.max(cast(jobs.c.metadata[SEED_BATCH_KEY].astext, Integer)), 0)
    ).where(jobs.c.metadata.has_key(SEED_BATCH_KEY))
    return int((await conn.execute(stmt)).scalar_one())


async def insert_jobs(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(jobs), list(rows))


async def insert_events(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Events in the given order: ids follow it, so each job's events read back in order."""
    if rows:
        await conn.execute(insert(events), list(rows))


async def insert_questions(
    conn: AsyncConnection, rows: Sequence[dict[str, Any]]
) -> Sequence[Row[Any]]:
    if not rows:
        return []
    stmt = insert(questions).values(list(rows)).returning(*questions.c)
    return (await conn.execute(stmt)).all()


async def set_result(conn: AsyncConnection, job_id: uuid.UUID, result: dict[str, Any]) -> None:
    await conn.execute(update(jobs).where(jobs.c.id == job_id).values(result=result))


async def insert_students(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> int:
    """Demo students; ones already present (same `student_id`) are left as they are."""
    if not rows:
        return 0
    stmt = (
        pg_insert(students)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=[students.c.student_id])
        .returning(students.c.student_id)
    )
    return len((await conn.execute(stmt)).all())
