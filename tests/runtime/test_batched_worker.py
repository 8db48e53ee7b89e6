"""The worker's batched ARQ round trips on a real Redis: jobs started by one script call each
batch, finished in shared transactions, and ARQ's own behaviour kept (each job once, a retry
runs again, an abort before the start is honoured, no key left behind)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from arq import func
from arq.connections import RedisSettings, create_pool
from arq.constants import abort_jobs_ss
from arq.utils import timestamp_ms
from arq.worker import Retry
from workers.batched import BatchedWorker

QUEUE = "test:batched"


async def _count(ctx: dict[str, Any], key: str) -> str:
    ctx["seen"][key] += 1
    ctx["ran"].set()
    await asyncio.sleep(0.01)
    return key


async def _retry_once(ctx: dict[str, Any], key: str) -> None:
    ctx["seen"][key] += 1
    if ctx["job_try"] == 1:
        raise Retry(defer=0.05)


def _worker(redis_url: str, seen: Counter[str], **options: Any) -> BatchedWorker:
    options.setdefault("burst", True)
    return BatchedWorker(
        functions=[func(_count, name="count"), func(_retry_once, name="retry_once")],
        redis_settings=RedisSettings.from_dsn(redis_url),
        queue_name=QUEUE,
        poll_delay=0.01,
        keep_result=0,
        allow_abort_jobs=True,
        handle_signals=False,
        ctx={"seen": seen, "ran": asyncio.Event()},
        **options,
    )


async def test_jobs_run_once_each_and_finish_in_shared_transactions(redis_url: str) -> None:
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    seen: Counter[str] = Counter()
    try:
        enqueued = [
            await pool.enqueue_job("count", f"job{number}", _queue_name=QUEUE)
            for number in range(120)
        ]
        enqueued.append(await pool.enqueue_job("retry_once", "again", _queue_name=QUEUE))
        aborted = await pool.enqueue_job("count", "aborted", _queue_name=QUEUE)
        assert aborted is not None
        enqueued.append(aborted)
        await pool.zadd(abort_jobs_ss, {aborted.job_id: timestamp_ms()})  # as Job.abort does

        worker = _worker(redis_url, seen, max_jobs=40, queue_read_limit=200)
        try:
            await worker.main()
        finally:
            await worker.close()

        assert seen == Counter({**{f"job{n}": 1 for n in range(120)}, "again": 2})
        assert worker.jobs_complete == 121 and worker.jobs_retried == 1
        assert worker.jobs_failed == 1, "the job aborted before its start"
        assert worker._finishes is not None
        assert worker._finishes.sent < 60, "endings share transactions"
        ours = {job.job_id for job in enqueued if job is not None}
        leftovers = [
            key async for key in pool.scan_iter("arq:*") if key.decode().rsplit(":", 1)[-1] in ours
        ]
        assert leftovers == [], "a job's keys left behind"
        assert await pool.zcard(QUEUE) == 0
    finally:
        await pool.flushdb()
        await pool.aclose()


async def test_a_job_running_elsewhere_is_left_alone(redis_url: str) -> None:
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    seen: Counter[str] = Counter()
    try:
        taken = await pool.enqueue_job("count", "taken", _queue_name=QUEUE)
        await pool.enqueue_job("count", "free", _queue_name=QUEUE)
        assert taken is not None
        await pool.psetex(f"arq:in-progress:{taken.job_id}", 300_000, b"1")  # another worker's
        worker = _worker(redis_url, seen, max_jobs=10, burst=False)
        running = asyncio.create_task(worker.main())
        try:
            async with asyncio.timeout(10):
                await worker.ctx["ran"].wait()
            await asyncio.sleep(0.2)  # a few more polls
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await worker.close()
        assert seen == Counter({"free": 1})
        assert await pool.zscore(QUEUE, taken.job_id) is not None, "still queued"
        assert await pool.get(f"arq:retry:{taken.job_id}") is None, "its try was not counted"
    finally:
        await pool.flushdb()
        await pool.aclose()
