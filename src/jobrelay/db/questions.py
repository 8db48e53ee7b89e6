"""SQL for stored quiz questions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from jobrelay.db.models import Question

questions = Question.__table__

__all__ = ["count_for_job", "insert_questions", "list_for_job"]


async def insert_questions(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert in one statement; a (job, position) already stored is skipped. Rows written."""
    if not rows:
        return 0
    stmt = (
        insert(Question)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=[questions.c.job_id, questions.c.position])
        .returning(questions.c.id)
    )
    return len((await conn.execute(stmt)).all())


async def list_for_job(conn: AsyncConnection, job_id: uuid.UUID) -> Sequence[Row[Any]]:
    stmt = select(*questions.c).where(questions.c.job_id == job_id).order_by(questions.c.position)
    return (await conn.execute(stmt)).all()


async def count_for_job(conn: AsyncConnection, job_id: uuid.UUID) -> int:
    stmt = select(func.count()).where(questions.c.job_id == job_id)
    return int((await conn.execute(stmt)).scalar_one())
