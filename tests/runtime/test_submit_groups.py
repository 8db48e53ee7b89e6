"""Group commit of submissions on real PostgreSQL and Redis: concurrent submissions share a
statement and a Redis round trip, each gets its own job back, and one bad row fails only its own
request."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from jobrelay.db import batch as batch_db
from jobrelay.jobs.submits import groups_of
from jobrelay.services import Services
from tests.conftest import fast_settings_env, settings_from_env
from tests.support.backends import Backends, clone_database, drop_database


@pytest.fixture
async def services(
    backends: Backends, template_database: str, redis_url: str
) -> AsyncIterator[tuple[Services, str]]:
    name, url = await clone_database(backends.postgres_admin_url, template_database)
    opened = await Services.open(settings_from_env(fast_settings_env(url, redis_url)))
    yield opened, url
    await opened.close()
    await drop_database(backends.postgres_admin_url, name)


async def _user(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval(
                "INSERT INTO users (name, role, tokens, webhook_secret) "
                "VALUES ('g', 'user', 10, 'whsec_x') RETURNING id"
            )
        )
    finally:
        await conn.close()


def _job(user_id: int) -> batch_db.NewJob:
    return batch_db.NewJob(
        id=uuid.uuid4(),
        kind="prompt.generate",
        user_id=user_id,
        input={"manual_prompt": "hello"},
        metadata={"n": 1},
        webhook=None,
        webhook_events_filter=["completed"],
        deadline_seconds=900,
        max_attempts=3,
        submitted_by=user_id,
    )


async def test_concurrent_submissions_share_groups_and_each_gets_its_job(
    services: tuple[Services, str],
) -> None:
    opened, url = services
    user_id = await _user(url)
    groups = groups_of(opened, "Task queued, waiting to start...")
    jobs = [_job(user_id) for _ in range(200)]
    changes = await asyncio.gather(*(groups.submit(job) for job in jobs))

    assert [uuid.UUID(str(c.job.id)) for c in changes] == [j.id for j in jobs]
    assert all(c.event["status"] == "queued" and c.event["job_id"] == c.job.id for c in changes)
    assert groups.groups < len(jobs)
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT j.id, j.status, j.webhook_events_filter, count(e.id) AS events "
            "FROM jobs j JOIN job_events e ON e.job_id = j.id GROUP BY j.id"
        )
    finally:
        await conn.close()
    assert {r["id"] for r in rows} == {j.id for j in jobs}
    assert all(r["status"] == "queued" and r["events"] == 1 for r in rows)
    assert all(r["webhook_events_filter"] == ["completed"] for r in rows)
    assert await opened.queue.held(j.id for j in jobs) == {str(j.id) for j in jobs}


async def test_one_bad_submission_fails_alone(services: tuple[Services, str]) -> None:
    opened, url = services
    user_id = await _user(url)
    groups = groups_of(opened, "Task queued, waiting to start...")
    good = [_job(user_id) for _ in range(20)]
    bad = _job(user_id + 1000)  # no such user: the foreign key refuses the row
    results = await asyncio.gather(
        *(groups.submit(job) for job in [*good[:10], bad, *good[10:]]), return_exceptions=True
    )
    assert isinstance(results[10], sa_exc.IntegrityError)
    assert all(not isinstance(r, BaseException) for i, r in enumerate(results) if i != 10)
    assert await opened.queue.held([bad.id]) == set()
    assert await opened.queue.held(j.id for j in good) == {str(j.id) for j in good}
