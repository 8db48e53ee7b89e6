"""The read pool against the real database: the same row as the SQLAlchemy read, connections
bounded and replaced when lost, nothing leaked by cancelled reads."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from jobrelay.config import Settings
from jobrelay.db import jobs as jobs_db
from jobrelay.db import reads
from jobrelay.db.reads import GROUP_READERS, ReadPool, Record
from jobrelay.services import Services
from jobrelay.users import service as users_service
from jobrelay.users.schemas import UserCreate
from tests.support.jobs import store_queued_job


async def _new_job(services: Services) -> uuid.UUID:
    user, _ = await users_service.create_user(
        services, UserCreate(name="reader", role="user", tokens=0)
    )
    return await store_queued_job(
        services,
        user.id,
        input={"manual_prompt": "tides", "nested": {"n": [1, 2]}},
        metadata={"source": "test"},
        webhook_events_filter=["completed"],
    )


async def _backends(settings: Settings, pool: ReadPool) -> list[int]:
    """Server pids of the pool's connections."""
    return [await conn.fetchval("SELECT pg_backend_pid()") for conn in pool._idle]


@pytest.fixture
async def pool(settings: Settings) -> ReadPool:
    return ReadPool(settings, size=2)


async def test_a_read_gives_the_row_the_engine_gives(services: Services, pool: ReadPool) -> None:
    job_id = await _new_job(services)
    try:
        row = await jobs_db.read_job(pool, job_id)
        async with services.engine.connect() as conn:
            expected = await jobs_db.get_job(conn, job_id)
        assert row is not None and expected is not None
        assert dict(row.items()) == dict(expected._mapping)
        assert row.input == {"manual_prompt": "tides", "nested": {"n": [1, 2]}}
        assert row.status == "queued"
        with pytest.raises(AttributeError):
            _ = row.no_such_column
        assert await jobs_db.read_job(pool, uuid.uuid4()) is None
    finally:
        await pool.close()


async def test_reads_beyond_the_size_wait_for_a_connection(
    services: Services, pool: ReadPool
) -> None:
    try:
        reads = await asyncio.gather(
            *(pool.fetch("SELECT $1::int AS n, pg_sleep(0.005)", n) for n in range(50))
        )
        assert [rows[0]["n"] for rows in reads] == list(range(50))
        assert pool._opened == len(pool._idle) == 2
    finally:
        await pool.close()


class CountingPool(ReadPool):
    """Counts the statements the pool runs (the database is still the real one)."""

    statements = 0

    async def fetch(self, query: str, *args: Any, record: type[Record] = Record) -> list[Record]:
        self.statements += 1
        return await super().fetch(query, *args, record=record)


async def test_reads_of_jobs_asked_together_are_one_statement(
    services: Services, settings: Settings
) -> None:
    pool = CountingPool(settings, size=2)
    jobs = [await _new_job(services) for _ in range(5)]
    missing = uuid.uuid4()
    asked = [*jobs, missing] * 10
    try:
        rows = await asyncio.gather(*(jobs_db.read_job(pool, job_id) for job_id in asked))
        assert [None if row is None else row.id for row in rows] == [
            None if job_id == missing else job_id for job_id in asked
        ]
        assert pool.statements <= GROUP_READERS
        assert pool._opened <= GROUP_READERS
        # A lone read goes at once, alone.
        assert (await jobs_db.read_job(pool, jobs[0])) is not None
        assert pool.statements <= GROUP_READERS + 1
    finally:
        await pool.close()


async def test_a_read_asked_as_the_last_reader_ends_is_made(
    services: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reads, "GROUP_READERS", 1)
    pool = ReadPool(settings, size=1)
    first, second = await _new_job(services), await _new_job(services)

    async def one_after_the_other() -> Any:
        await jobs_db.read_job(pool, first)
        # Asked in the step the reader answered the first and found nothing more to read.
        return await jobs_db.read_job(pool, second)

    try:
        row = await asyncio.wait_for(one_after_the_other(), timeout=10)
        assert row is not None and row.id == second
    finally:
        await pool.close()


async def test_a_caller_that_goes_away_leaves_its_group_whole(
    services: Services, settings: Settings
) -> None:
    pool = CountingPool(settings, size=1)
    jobs = [await _new_job(services) for _ in range(3)]
    try:
        # The single connection is busy, so the reads below wait in one group.
        busy = asyncio.create_task(pool.fetch("SELECT pg_sleep(0.3)"))
        await asyncio.sleep(0.05)
        reads = [asyncio.create_task(jobs_db.read_job(pool, job_id)) for job_id in jobs]
        await asyncio.sleep(0.05)
        reads[1].cancel()
        await busy
        done = await asyncio.gather(*reads, return_exceptions=True)
        assert isinstance(done[1], asyncio.CancelledError)
        assert [row.id for row in (done[0], done[2]) if isinstance(row, Record)] == [
            jobs[0],
            jobs[2],
        ]
    finally:
        await pool.close()


async def test_a_failed_group_read_fails_each_of_its_callers(
    services: Services, settings: Settings
) -> None:
    pool = ReadPool(settings, size=1)
    job_id = await _new_job(services)
    await jobs_db.read_job(pool, job_id)
    await pool.close()
    outcomes = await asyncio.gather(
        *(jobs_db.read_job(pool, job_id) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(outcome, asyncpg.InterfaceError) for outcome in outcomes)


async def test_a_lost_connection_is_replaced(
    services: Services, settings: Settings, pool: ReadPool
) -> None:
    job_id = await _new_job(services)
    try:
        await asyncio.gather(*(jobs_db.read_job(pool, job_id) for _ in range(4)))
        killed = await _backends(settings, pool)
        admin = await asyncpg.connect(settings.asyncpg_dsn)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) pid", killed
            )
        finally:
            await admin.close()
        await asyncio.sleep(0.2)
        for _ in range(3):
            row = await jobs_db.read_job(pool, job_id)
            assert row is not None and row.id == job_id
        assert not set(await _backends(settings, pool)) & set(killed)
        assert pool._opened <= pool.size
    finally:
        await pool.close()


async def test_a_read_on_a_connection_lost_unnoticed_is_made_again(
    services: Services, settings: Settings, pool: ReadPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = await _new_job(services)
    try:
        await jobs_db.read_job(pool, job_id)
        killed = await _backends(settings, pool)
        # As if the connection's end had not reached the client yet when the read starts.
        monkeypatch.setattr(asyncpg.Connection, "is_closed", lambda self: False)
        admin = await asyncpg.connect(settings.asyncpg_dsn)
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", killed[0])
        finally:
            await admin.close()
        await asyncio.sleep(0.2)
        row = await jobs_db.read_job(pool, job_id)
        assert row is not None and row.id == job_id
        assert pool._opened == 1
        assert (await _backends(settings, pool)) != killed
    finally:
        monkeypatch.undo()
        await pool.close()


async def test_cancelled_reads_leak_no_connection(services: Services, pool: ReadPool) -> None:
    job_id = await _new_job(services)
    try:
        slow = [asyncio.create_task(pool.fetch("SELECT pg_sleep(0.5)")) for _ in range(2)]
        waiting = [asyncio.create_task(jobs_db.read_job(pool, job_id)) for _ in range(3)]
        await asyncio.sleep(0.1)
        for task in (*slow, *waiting):
            task.cancel()
        await asyncio.gather(*slow, *waiting, return_exceptions=True)
        assert pool._opened <= pool.size
        rows = await asyncio.gather(*(jobs_db.read_job(pool, job_id) for _ in range(5)))
        assert all(row is not None for row in rows)
        assert pool._opened <= pool.size
    finally:
        await pool.close()


async def test_a_statement_error_keeps_the_connection(pool: ReadPool) -> None:
    try:
        with pytest.raises(asyncpg.PostgresError):
            await pool.fetch("SELECT 1 / 0")
        assert await pool.fetch("SELECT 1 AS one") == [(1,)]
        assert pool._opened == 1
    finally:
        await pool.close()


async def test_a_closed_pool_refuses_reads(pool: ReadPool) -> None:
    await pool.fetch("SELECT 1")
    await pool.close()
    assert pool._opened == 0
    with pytest.raises(asyncpg.InterfaceError):
        await pool.fetch("SELECT 1")
