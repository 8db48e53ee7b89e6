"""A worker killed mid-job, and Redis losing its queue: no job is lost or stuck."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from tests.conftest import MakeUser, Stack
from tests.support.jobs import prompt_input, submit, wait_for_status
from tests.support.processes import base_env, worker_process


async def test_sigkilled_worker_job_runs_again(make_user: MakeUser, spawn_stack) -> None:
    stack: Stack = await spawn_stack(prompt_step_delay="0.7", lease_seconds="2")
    user = await make_user(tokens=10**6, on=stack)
    job = await submit(user.client, "prompt.generate", prompt_input())
    running = await wait_for_status(user.client, job["id"], "processing", timeout=20)
    assert running["attempts"] == 1
    stack.workers[0].kill()
    replacement = worker_process(base_env(stack.env)).start()
    stack.workers.append(replacement)
    done = await wait_for_status(user.client, job["id"], timeout=60)
    assert done["status"] == "completed"
    assert done["attempts"] == 2
    events = (
        await user.client.get(
            f"/v1/jobs/{job['id']}/events", headers={"Accept": "application/json"}
        )
    ).json()["items"]
    assert [e["status"] for e in events if e["type"] == "status"] == [
        "queued", "processing", "processing", "completed"
    ]  # fmt: skip
    assert (await user.client.get("/v1/me")).json()["tokens"] == 10**6 - 700


async def test_job_that_keeps_losing_its_worker_fails(make_user: MakeUser, spawn_stack) -> None:
    stack: Stack = await spawn_stack(prompt_step_delay="0.7", lease_seconds="2", max_attempts="2")
    user = await make_user(tokens=10**6, on=stack)
    job = await submit(user.client, "prompt.generate", prompt_input())
    for attempt in (1, 2):
        await _wait_attempt(user, job["id"], attempt)
        stack.workers[-1].kill()
        stack.workers.append(worker_process(base_env(stack.env)).start())
    failed = await wait_for_status(user.client, job["id"], timeout=60)
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "worker_lost"
    assert failed["attempts"] == 2


async def _wait_attempt(user, job_id: str, attempt: int) -> None:
    for _ in range(400):
        job = (await user.client.get(f"/v1/jobs/{job_id}")).json()
        if job["status"] == "processing" and job["attempts"] == attempt:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"attempt {attempt} never started: {job}")


async def test_reconciler_restores_jobs_redis_lost(make_user: MakeUser, spawn_stack) -> None:
    stack: Stack = await spawn_stack(workers=0)
    user = await make_user(on=stack)
    jobs = [await submit(user.client, "prompt.generate", prompt_input(f"r{i}")) for i in range(5)]
    redis = aioredis.Redis.from_url(stack.env["JOBRELAY_REDIS_URL"])
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()
    stack.workers.append(worker_process(base_env(stack.env)).start())
    for job in jobs:
        done = await wait_for_status(user.client, job["id"], timeout=60)
        assert done["status"] == "completed"
        assert done["attempts"] == 1
