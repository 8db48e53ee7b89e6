"""Queues per kind: a kind's jobs wait in its own queue, `jobrelay worker --queue` serves only
the queues named, and a queue busy with slow jobs does not hold up another."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

import httpx
from redis.asyncio import Redis

from tests.conftest import Stack
from tests.kinds.conftest import KindStack, start_worker
from tests.stats.test_metrics import scrape
from tests.support.jobs import prompt_input, submit, wait_for_status


def _at(job: dict[str, object], field: str) -> dt.datetime:
    return dt.datetime.fromisoformat(str(job[field]))


async def test_a_busy_slow_queue_does_not_delay_a_prompt_on_the_default_queue(
    kind_stack: KindStack, admin_http: Callable[[Stack], httpx.AsyncClient]
) -> None:
    stack = await kind_stack()
    start_worker(stack, "--queue", "slow", worker_max_jobs="1")
    start_worker(stack, "--queue", "default")
    client = admin_http(stack)
    slow = [await submit(client, "test.sleep", {"seconds": 4, "label": str(n)}) for n in range(2)]
    await wait_for_status(client, slow[0]["id"], "processing", timeout=30)

    prompt = await submit(client, "prompt.generate", prompt_input("not stuck behind sleepers"))
    done = await wait_for_status(client, prompt["id"], timeout=30)
    assert done["status"] == "completed", done

    first, second = [(await client.get(f"/v1/jobs/{job['id']}")).json() for job in slow]
    assert first["status"] == "processing", "the slow worker is still busy with the first sleep"
    assert second["status"] == "queued", "and the second sleep waits for it"
    assert _at(done, "completed_at") < _at(first, "started_at") + dt.timedelta(seconds=4)

    async with Redis.from_url(stack.env["JOBRELAY_REDIS_URL"]) as redis:
        base = stack.settings.queue_name
        assert await redis.zscore(f"{base}:slow", second["id"]) is not None
        assert await redis.zscore(base, second["id"]) is None

    metrics = await scrape(client)
    assert metrics.value("jobrelay_queue_depth", queue="slow") == 1
    assert metrics.value("jobrelay_queue_depth", queue="default") == 0
    assert metrics.value("jobrelay_arq_queue_length", queue="slow") >= 1
    stats = (await client.get("/v1/stats")).json()
    assert stats["queues"] == {"default": 0, "slow": 1}
    assert stats["queue_depth"] == 1

    for job in slow:
        assert (await wait_for_status(client, job["id"], timeout=30))["status"] == "completed"


async def test_a_worker_serves_only_the_queues_it_is_given(
    kind_stack: KindStack, admin_http: Callable[[Stack], httpx.AsyncClient]
) -> None:
    stack = await kind_stack()
    start_worker(stack, "--queue", "default")
    client = admin_http(stack)
    sleeper = await submit(client, "test.sleep", {"seconds": 0})
    counter = await submit(client, "test.count", {"to": 2})
    assert (await wait_for_status(client, counter["id"]))["status"] == "completed"
    await asyncio.sleep(1.5)  # several polls and a reconcile pass of the default-queue worker
    assert (await client.get(f"/v1/jobs/{sleeper['id']}")).json()["status"] == "queued"

    start_worker(stack)  # without --queue: every queue
    assert (await wait_for_status(client, sleeper["id"]))["status"] == "completed"


async def test_the_reconciler_puts_a_lost_job_back_on_its_kinds_queue(
    kind_stack: KindStack, admin_http: Callable[[Stack], httpx.AsyncClient]
) -> None:
    stack = await kind_stack()
    client = admin_http(stack)
    job = await submit(client, "test.sleep", {"seconds": 0})
    base = stack.settings.queue_name
    async with Redis.from_url(stack.env["JOBRELAY_REDIS_URL"]) as redis:
        assert await redis.zrem(f"{base}:slow", job["id"]) == 1
        await redis.delete(f"arq:job:{job['id']}")
        start_worker(stack, "--queue", "default")  # reconciles; cannot run test.sleep itself
        for _ in range(200):
            if await redis.zscore(f"{base}:slow", job["id"]) is not None:
                break
            await asyncio.sleep(0.1)
        assert await redis.zscore(f"{base}:slow", job["id"]) is not None
        assert await redis.zscore(base, job["id"]) is None
    start_worker(stack, "--queue", "slow")
    assert (await wait_for_status(client, job["id"]))["status"] == "completed"
