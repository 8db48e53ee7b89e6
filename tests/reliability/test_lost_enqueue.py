"""The window between PostgreSQL and Redis at submit time.

`POST /v1/jobs` enqueues inside the transaction that inserts the job, then commits (see
docs/RELIABILITY.md). Two ways a crash can split them:

- the row is committed but Redis never got (or lost) the ARQ job: the reconciler enqueues it,
  and a client retrying with the same `Idempotency-Key` gets the same job, not a second one;
- Redis got the ARQ job but the row never committed (the API died before its commit): the worker
  finds no row, retries briefly for a slow commit, then drops the delivery; nothing is stored.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis.asyncio as aioredis
from arq.connections import ArqRedis
from arq.constants import job_key_prefix

from jobrelay.queue import RUN_JOB
from tests.reliability.clients import client_for, create_user
from tests.reliability.conftest import MakeStack, record_figures
from tests.reliability.invariants import check_jobs, fetch
from tests.support.jobs import prompt_input, wait_for_status
from tests.support.processes import api_process, base_env, worker_process


async def _forget_in_redis(redis_url: str, queue_name: str, job_id: str) -> None:
    """Make Redis lose the ARQ job, as if the enqueue had never happened."""
    redis = aioredis.Redis.from_url(redis_url)
    try:
        await redis.delete(job_key_prefix + job_id)
        await redis.zrem(queue_name, job_id)
    finally:
        await redis.aclose()


async def stack_queue_holds(redis_url: str, job_id: str) -> bool:
    redis = aioredis.Redis.from_url(redis_url)
    try:
        return bool(await redis.exists(job_key_prefix + job_id))
    finally:
        await redis.aclose()


@pytest.mark.timeout(180)
async def test_committed_job_lost_by_redis_runs_and_retry_gets_it(make_stack: MakeStack) -> None:
    stack = await make_stack(workers=0, generator=False)
    queue_name = stack.settings.queue_name
    made = await create_user(stack)
    body = {"kind": "prompt.generate", "input": prompt_input("lost between commit and enqueue")}
    headers = {"Idempotency-Key": "reliability-e-1"}
    async with client_for(stack, made["api_key"]) as client:
        first = await client.post("/v1/jobs", json=body, headers=headers)
        assert first.status_code == 202, first.text
        job_id = first.json()["id"]
    await _forget_in_redis(stack.env["JOBRELAY_REDIS_URL"], queue_name, job_id)
    assert not await stack_queue_holds(stack.env["JOBRELAY_REDIS_URL"], job_id)

    port = int(stack.api_url.rsplit(":", 1)[1])
    stack.api.kill()
    stack.api = api_process(stack.api.env, port=port).start()
    stack.api.wait_http("/healthz")

    async with client_for(stack, made["api_key"]) as client:
        again = await client.post("/v1/jobs", json=body, headers=headers)
        assert again.status_code == 202, again.text
        assert again.json()["id"] == job_id
        assert again.headers["idempotent-replayed"] == "true"

        worker_started = time.monotonic()
        stack.workers.append(worker_process(base_env(stack.env)).start())
        done = await wait_for_status(client, job_id, timeout=60)
        recovered = time.monotonic() - worker_started
        assert done["status"] == "completed", done
        assert done["attempts"] == 1
        third = await client.post("/v1/jobs", json=body, headers=headers)
        assert third.status_code == 202 and third.json()["id"] == job_id
    same_key = await fetch(
        stack.env["JOBRELAY_DATABASE_URL"],
        "SELECT count(*) AS n FROM jobs WHERE idempotency_key = $1",
        headers["Idempotency-Key"],
    )
    assert same_key[0]["n"] == 1
    report = await check_jobs(stack.env["JOBRELAY_DATABASE_URL"], [job_id])
    report.assert_clean()
    record_figures(
        "e_commit_without_enqueue",
        {
            "lost_jobs": 0,
            "duplicate_jobs_for_the_key": same_key[0]["n"] - 1,
            "seconds_from_worker_start_to_completed": round(recovered, 1),
        },
    )


@pytest.mark.timeout(120)
async def test_enqueued_job_never_committed_is_dropped(make_stack: MakeStack) -> None:
    stack = await make_stack(workers=1, generator=False)
    ghost = str(uuid.uuid4())
    redis = aioredis.Redis.from_url(stack.env["JOBRELAY_REDIS_URL"])
    try:
        pool = ArqRedis(redis.connection_pool, default_queue_name=stack.settings.queue_name)
        assert await pool.enqueue_job(RUN_JOB, ghost, _job_id=ghost) is not None
        for _ in range(150):
            if not await redis.exists(job_key_prefix + ghost):
                break
            await asyncio.sleep(0.2)
        assert not await redis.exists(job_key_prefix + ghost), "the worker kept the delivery"
    finally:
        await redis.aclose()
    rows = await fetch(
        stack.env["JOBRELAY_DATABASE_URL"],
        "SELECT count(*) AS n FROM jobs WHERE id = $1",
        uuid.UUID(ghost),
    )
    assert rows[0]["n"] == 0
    assert all(w.alive() for w in stack.workers)
