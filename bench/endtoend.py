"""End to end: 2000 `prompt.generate` jobs (300 with --quick) from submit to `completed` through
one worker, against bare ARQ running as many no-op jobs through one worker with the same tuning.

jobrelay: 32 clients submit through the API as 50 different users (the shipped per-user limits
stay on); the clock runs from the first submit until PostgreSQL says the last job is terminal.
Every job must complete with all 7 of its events stored (queued, 10, 30, 50, 70, 90, 100) and
published live in the same order; the run subscribes to every job's channel to check.

Bare ARQ: 32 concurrent producers enqueue no-op jobs straight into Redis; the clock runs from
the first enqueue until the worker has finished the last one (counted inside the worker).

Both run a warm-up batch first. The memory readings (idle API and worker, and both after the
run) are taken here too.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import defaultdict

import asyncpg
import redis.asyncio as aioredis
from arq.connections import ArqRedis, RedisSettings, create_pool

from bench import httpload, memory
from bench.context import Context
from bench.cpu import CpuMeter, describe
from bench.environment import Proc, RedisLease, child_env
from bench.report import Row
from bench.stack import stack
from bench.submit import Requests
from jobrelay.broadcast import CHANNEL_PREFIX
from jobrelay.config import Settings

PRODUCERS = 32
USERS = 50
# Issue 11: three times the 126 jobs/s measured before the write buffer.
BEFORE_JOBS_PER_SECOND = 126.0
TARGET_JOBS_PER_SECOND = 3 * BEFORE_JOBS_PER_SECOND
EXPECTED_PROGRESS = [0, 10, 30, 50, 70, 90, 100]


def submits(port: int, keys: list[str], run: str) -> Requests:
    """Prompt submissions tagged with the run they belong to (warm-up or measured)."""
    return Requests.submit(
        port,
        keys,
        body={
            "kind": "prompt.generate",
            "input": {"manual_prompt": "Explain photosynthesis to a ten year old"},
            "metadata": {"run": run},
        },
    )


async def _wait_terminal(conn: asyncpg.Connection, count: int, timeout: float) -> float:
    """Poll until `count` jobs are terminal; the time.time() it was first seen."""
    deadline = time.monotonic() + timeout
    while True:
        done = await conn.fetchval(
            "SELECT count(*) FROM jobs WHERE status IN ('completed', 'failed', 'canceled')"
        )
        if done >= count:
            return time.time()
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done} of {count} jobs finished in {timeout} s")
        await asyncio.sleep(0.01)


class Listener:
    """Every event published on any job's channel, in the order Redis delivered them."""

    def __init__(self, redis_url: str) -> None:
        self.client = aioredis.Redis.from_url(redis_url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.seen: dict[str, list[int]] = defaultdict(list)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.pubsub.psubscribe(f"{CHANNEL_PREFIX}*")
        self.task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        while True:
            message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None and message.get("type") == "pmessage":
                event = json.loads(message["data"])
                if event.get("id") is not None:  # live output has no id (and is not stored)
                    self.seen[str(event["job_id"])].append(int(event["id"]))

    async def stop(self) -> None:
        await asyncio.sleep(0.3)  # the last publishes are still on the wire
        if self.task is not None:
            self.task.cancel()
        await self.pubsub.aclose()  # type: ignore[no-untyped-call]
        await self.client.aclose()


async def _check(conn: asyncpg.Connection, listener: Listener, run: str, count: int) -> list[str]:
    """Problems found: jobs not completed, events missing, or published out of order."""
    problems = []
    statuses = dict(
        await conn.fetch(
            "SELECT status, count(*) FROM jobs WHERE metadata->>'run' = $1 GROUP BY status", run
        )
    )
    if statuses != {"completed": count}:
        problems.append(f"statuses {statuses}")
    rows = await conn.fetch(
        "SELECT e.job_id, array_agg(e.progress ORDER BY e.id) AS progress, "
        "array_agg(e.id ORDER BY e.id) AS ids "
        "FROM job_events e JOIN jobs j ON j.id = e.job_id WHERE j.metadata->>'run' = $1 "
        "GROUP BY e.job_id",
        run,
    )
    wrong_events = [r for r in rows if list(r["progress"]) != EXPECTED_PROGRESS]
    if len(rows) != count or wrong_events:
        problems.append(
            f"{len(wrong_events)} jobs with events other than {EXPECTED_PROGRESS}"
            + (f", e.g. {list(wrong_events[0]['progress'])}" if wrong_events else "")
        )
    # The queued event is published by the API after its commit, which may be after the worker
    # has claimed the job; the worker's six must arrive in stored order.
    unordered = [
        r["job_id"] for r in rows if not _published_in_order(listener, r["job_id"], r["ids"])
    ]
    if unordered:
        example = unordered[0]
        stored = next(list(r["ids"]) for r in rows if r["job_id"] == example)
        problems.append(
            f"{len(unordered)} jobs whose live events differ from the stored ones, e.g. "
            f"published {listener.seen.get(str(example))} stored {stored}"
        )
    return problems


async def _jobrelay(
    ctx: Context, total: int, warm: int
) -> tuple[float, dict[str, float], list[str], dict[str, float]]:
    readings: dict[str, float] = {}
    async with stack(ctx.template) as s:
        api = s.start_api(wait=False)
        worker = await s.start_worker()
        users = await s.make_users(ctx.size(USERS, 20))
        api.wait_http("/healthz")
        await asyncio.sleep(ctx.seconds(1.0, 0.3))
        readings["idle API"] = memory.rss(api)
        readings["idle worker"] = memory.rss(worker)
        port = api.port or 0
        keys = [u.key for u in users]
        conn = await s.connect()
        listener = Listener(s.redis_url)
        await listener.start()
        try:
            ctx.log(f"endtoend: jobrelay warm-up, {warm} jobs")
            await httpload.run(port, submits(port, keys, "warm"), connections=PRODUCERS, total=warm)
            await _wait_terminal(conn, warm, timeout=120)
            ctx.log(f"endtoend: jobrelay, {total} jobs")
            meter = CpuMeter.for_processes(
                {"worker": worker.pid, "API": api.pid, "client": os.getpid()},
                admin_dsn=s.backends.postgres_dsn,
                database=s.database,
                redis_url=s.redis_url,
            )
            await meter.start()
            began = time.time()
            submitting = asyncio.create_task(
                httpload.run(
                    port, submits(port, keys, "measure"), connections=PRODUCERS, total=total
                )
            )
            finished = await _wait_terminal(conn, warm + total, timeout=600)
            submitted = await submitting
            await meter.stop()
            extra = {
                **{f"cpu {name}": ms for name, ms in meter.per(total).items()},
                "connections_opened": meter.sessions,
                "seconds": finished - began,
                "submit_seconds": submitted.seconds,
                "submit_p99": submitted.p99,
            }
            await listener.stop()
            problems = _unexpected(submitted.unexpected([202]))
            problems += await _check(conn, listener, "measure", total)
            latency = await conn.fetchrow(
                "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY completed_at - created_at) AS p50, "
                "percentile_cont(0.99) WITHIN GROUP (ORDER BY completed_at - created_at) AS p99 "
                "FROM jobs WHERE metadata->>'run' = 'measure'"
            )
            assert latency is not None
            extra["job_p50"] = latency["p50"].total_seconds() * 1000
            extra["job_p99"] = latency["p99"].total_seconds() * 1000
        finally:
            await conn.close()
        readings["API after the end-to-end run"] = memory.rss(api)
        readings["worker after the end-to-end run"] = memory.rss(worker)
    return total / extra["seconds"], readings, problems, extra


def _published_in_order(listener: Listener, job_id: object, stored: list[int]) -> bool:
    seen = listener.seen.get(str(job_id), [])
    queued, rest = stored[0], list(stored[1:])
    return sorted(seen) == sorted(stored) and [i for i in seen if i != queued] == rest


def _unexpected(statuses: dict[int, int]) -> list[str]:
    return [f"submit answered {statuses}"] if statuses else []


async def _enqueue(pool: ArqRedis, start: int, count: int) -> None:
    numbers = iter(range(start, start + count))

    async def producer() -> None:
        for n in numbers:
            await pool.enqueue_job("noop", n)

    await asyncio.gather(*(producer() for _ in range(PRODUCERS)))


async def _wait_line(proc: Proc, word: str, timeout: float) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in proc.log().splitlines():
            if line.startswith(word):
                parts = line.split()
                return float(parts[1]) if len(parts) > 1 else 0.0
        if not proc.alive():
            raise RuntimeError(f"bare ARQ worker exited:\n{proc.log()[-3000:]}")
        await asyncio.sleep(0.01)
    raise RuntimeError(f"bare ARQ worker did not report {word!r} in {timeout} s")


async def _bare_arq(ctx: Context, total: int, warm: int) -> tuple[float, dict[str, float]]:
    lease = RedisLease(ctx.backends.redis_base)
    url = lease.acquire()
    proc = Proc(
        "arq-noop",
        [sys.executable, "-m", "bench.arq_noop", url, str(warm), str(total)],
        child_env({}),
    ).start()
    pool = await create_pool(
        RedisSettings.from_dsn(url),
        default_queue_name=Settings(_env_file=None).queue_name,  # type: ignore[call-arg]
    )
    try:
        await _wait_line(proc, "ready", 30)
        ctx.log(f"endtoend: bare ARQ warm-up, {warm} jobs")
        await _enqueue(pool, 0, warm)
        await _wait_line(proc, "warm", 60)
        ctx.log(f"endtoend: bare ARQ, {total} jobs")
        meter = CpuMeter.for_processes(
            {"worker": proc.pid, "client": os.getpid()},
            admin_dsn=ctx.backends.postgres_dsn,
            database=None,
            redis_url=url,
        )
        await meter.start()
        began = time.time()
        await _enqueue(pool, warm, total)
        finished = await _wait_line(proc, "done", 300)
        await meter.stop()
        assert finished is not None
        return total / (finished - began), meter.per(total)
    finally:
        await pool.aclose()
        proc.stop()
        lease.release()


async def run(ctx: Context) -> list[Row]:
    total = ctx.size(2000, 150)
    warm = ctx.size(200, 20)
    bare, bare_cpu = await _bare_arq(ctx, total, warm)
    ctx.log(f"endtoend: bare ARQ {bare:,.0f} jobs/s; CPU ms/job: {describe(bare_cpu)}")
    ours, readings, problems, extra = await _jobrelay(ctx, total, warm)
    ours_cpu = {k.removeprefix("cpu "): v for k, v in extra.items() if k.startswith("cpu ")}
    ctx.log(
        f"endtoend: jobrelay {ours:,.0f} jobs/s ({extra['seconds']:.2f} s; submitting took "
        f"{extra['submit_seconds']:.2f} s, submit p99 {extra['submit_p99']:.1f} ms); "
        f"CPU ms/job: {describe(ours_cpu)}; {extra['connections_opened']:.0f} PostgreSQL "
        f"connections opened; problems: {problems or 'none'}"
    )
    return [
        Row(
            "endtoend",
            f"{total} prompt jobs, jobs/s",
            ours,
            "jobs/s",
            baseline=bare,
            target=f">= {TARGET_JOBS_PER_SECOND:.0f} jobs/s (3x before)",
            met=ours >= TARGET_JOBS_PER_SECOND and not problems,
            note="; ".join(problems)
            or f"all {total} completed, 7 events each stored and published in order; "
            f"submitting took {extra['submit_seconds']:.2f} s of {extra['seconds']:.2f} s",
        ),
        *(
            Row("endtoend", f"{name} CPU per job", ms, "ms", baseline=bare_cpu.get(name))
            for name, ms in ours_cpu.items()
        ),
        Row("endtoend", "submit to completed, p50", extra["job_p50"], "ms"),
        Row("endtoend", "submit to completed, p99", extra["job_p99"], "ms"),
        *memory.rows(readings),
    ]
