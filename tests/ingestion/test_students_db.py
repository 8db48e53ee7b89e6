"""The students upsert against the real database: counts, rows left alone when unchanged, and
the deferred flush staying inside its own transaction."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

from sqlalchemy import text

from jobrelay.db import students as students_db
from jobrelay.db.students import StudentRow, UpsertCounts
from jobrelay.services import Services
from tests.ingestion.factories import new_prefix
from tests.ingestion.helpers import stored_students


def rows(prefix: str, count: int) -> list[StudentRow]:
    return [
        StudentRow(
            f"{prefix}-{n:05d}",
            "Ann",
            f"Lee{n}",
            f"ann{n}@example.com",
            1 + n % 12,
            dt.date(2011, 3, 4),
            "S1",
        )
        for n in range(count)
    ]


async def upsert(services: Services, batch: list[StudentRow], job_id: uuid.UUID) -> UpsertCounts:
    async with services.engine.begin() as conn:
        return await students_db.upsert_students(conn, batch, job_id=job_id)


async def test_upsert_counts_inserts_updates_and_unchanged_rows(services: Services) -> None:
    prefix = new_prefix()
    first_job, second_job = uuid.uuid4(), uuid.uuid4()
    batch = rows(prefix, 50)
    assert await upsert(services, batch, first_job) == UpsertCounts(inserted=50)
    before = await stored_students(services, prefix)

    changed = list(batch)
    changed[7] = changed[7]._replace(email="new@example.com")
    changed[9] = changed[9]._replace(date_of_birth=dt.date(2012, 1, 1))
    extra = rows(prefix + "x", 3)
    counts = await upsert(services, [*changed, *extra], second_job)
    assert counts == UpsertCounts(inserted=3, updated=2, unchanged=48)

    after = await stored_students(services, prefix)
    moved = {sid for sid in before if after[sid] != before[sid]}
    assert moved == {f"{prefix}-00007", f"{prefix}-00009"}
    assert after[f"{prefix}-00007"].last_job_id == second_job
    assert after[f"{prefix}-00000"].last_job_id == first_job
    assert len(after) == 53  # the three new ones share the prefix


async def test_an_empty_batch_writes_nothing(services: Services) -> None:
    assert await upsert(services, [], uuid.uuid4()) == UpsertCounts()


async def test_the_deferred_flush_applies_to_its_own_transaction_only(services: Services) -> None:
    async with services.engine.begin() as conn:
        await students_db.upsert_students(
            conn, rows(new_prefix(), 2), job_id=uuid.uuid4(), defer_flush=True
        )
        inside = (await conn.execute(text("SHOW synchronous_commit"))).scalar_one()
    async with services.engine.begin() as conn:
        await students_db.upsert_students(conn, rows(new_prefix(), 2), job_id=uuid.uuid4())
        plain = (await conn.execute(text("SHOW synchronous_commit"))).scalar_one()
    assert (inside, plain) == ("off", "on")


async def test_concurrent_batches_over_the_same_students_do_not_deadlock(
    services: Services,
) -> None:
    prefix = new_prefix()
    shared = rows(prefix, 400)
    forward = [row._replace(first_name="Forward") for row in shared]
    backward = [row._replace(first_name="Backward") for row in reversed(shared)]
    results = await asyncio.gather(
        *(upsert(services, batch, uuid.uuid4()) for batch in [forward, backward] * 4)
    )
    assert sum(result.inserted for result in results) == 400
    stored = await stored_students(services, prefix)
    assert len(stored) == 400
    assert len({row.first_name for row in stored.values()}) == 1  # one batch won every row
