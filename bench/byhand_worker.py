"""The drain benchmark's baseline: the same durable work as a jobrelay prompt job, written by
hand with bare ARQ and asyncpg, three transactions per job.

Per job: the claim (the job row to `processing` and its `started` event), one transaction with
the four progress steps (row and event each), the completion (row, event, token charge); a
Redis pub/sub publish per event. The same rows and the same ARQ tuning as jobrelay's worker, on
uvloop; none of jobrelay's guarantees beyond that (no per-user limit, no fence on the steps).

Run: `python -m bench.byhand_worker DATABASE_DSN REDIS_URL`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from arq import func
from arq.worker import Worker
from workers.main import use_uvloop, worker_options

from bench.arq_noop import TUNING
from bench.drain_sql import CHARGE, CLAIM, COMPLETE, EVENT, STEP, STEPS
from jobrelay.config import Settings
from jobrelay.queue import RUN_JOB


async def _event(
    conn: asyncpg.Connection, job: Any, type_: str, status: str, progress: int, message: str
) -> dict[str, Any]:
    row = await conn.fetchrow(
        EVENT, job["id"], type_, status, progress, message, job["attempts"], "{}"
    )
    return {"id": row["id"], "job_id": str(job["id"]), "type": type_, "status": status,
            "progress": progress, "message": message, "at": row["at"].isoformat(), "data": {}}  # fmt: skip


async def run_job(ctx: dict[str, Any], job_id: str) -> None:
    pool: asyncpg.Pool = ctx["pool"]
    redis: aioredis.Redis = ctx["redis"]

    async def publish(event: dict[str, Any]) -> None:
        await redis.publish(f"jobrelay:events:{job_id}", json.dumps(event))

    async with pool.acquire() as conn:
        async with conn.transaction():
            job = await conn.fetchrow(CLAIM, job_id)
            if job is None:
                return
            started = await _event(
                conn, job, "status", "processing", 10, "Initializing AI generation..."
            )
        await publish(started)
        events = []
        async with conn.transaction():
            for progress, message in STEPS:
                await conn.execute(STEP, job["id"], progress, message, job["attempts"])
                events.append(await _event(conn, job, "progress", "processing", progress, message))
        for event in events:
            await publish(event)
        prompt = json.loads(job["input"])["manual_prompt"]
        result = {"prompt": prompt.upper(), "fallback": False, "tokens_used": 1, "model": "hand"}
        async with conn.transaction():
            await conn.execute(COMPLETE, job["id"], json.dumps(result), job["attempts"])
            await conn.execute(CHARGE, job["user_id"], 1)
            done = await _event(
                conn, job, "status", "completed", 100, "Prompt generated successfully"
            )
        await publish(done)


def make_worker(dsn: str, redis_url: str) -> Worker:
    settings = Settings(_env_file=None, redis_url=redis_url)  # type: ignore[call-arg]
    options = worker_options(settings)

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["pool"] = await asyncpg.create_pool(dsn, min_size=20, max_size=20)
        ctx["redis"] = aioredis.Redis.from_url(redis_url)
        print("ready", flush=True)

    async def shutdown(ctx: dict[str, Any]) -> None:
        await ctx["pool"].close()
        await ctx["redis"].aclose()

    use_uvloop()
    return Worker(
        functions=[func(run_job, name=RUN_JOB)],
        on_startup=startup,
        on_shutdown=shutdown,
        **{name: options[name] for name in TUNING},
    )


def main() -> None:
    make_worker(sys.argv[1], sys.argv[2]).run()


if __name__ == "__main__":
    main()
