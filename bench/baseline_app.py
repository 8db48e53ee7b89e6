"""The submit benchmark's baseline: the same submit route written by hand. A bare FastAPI route
that stores the job and its `queued` event in one transaction through a plain asyncpg pool,
then enqueues it with ARQ's `enqueue_job`, on the same kind of uvicorn server.

It stands for what the route costs without jobrelay: no auth, no validation beyond JSON
parsing, no rate limit, no live event or counters. The tables are copies of `jobs` and
`job_events` with their indexes (`LIKE … INCLUDING ALL`), so index upkeep is the same for both;
the ARQ queue is its own, so no worker picks the jobs up.

Run: `python -m bench.baseline_app PORT DSN REDIS_URL`.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import uvicorn
from arq.connections import RedisSettings, create_pool
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

TABLE = "bench_baseline_jobs"
EVENTS = "bench_baseline_events"
QUEUE = "bench:baseline:queue"
INSERT = f"""
INSERT INTO {TABLE} (id, kind, status, progress, message, user_id, input, metadata,
                     deadline_seconds, max_attempts)
VALUES ($1, $2, 'queued', 0, 'Task queued, waiting to start...', $3, $4::jsonb, $5::jsonb, 900, 3)
RETURNING id, status, created_at
"""
INSERT_EVENT = f"""
INSERT INTO {EVENTS} (job_id, type, status, progress, message, attempt, data)
VALUES ($1, 'status', 'queued', 0, 'Task queued, waiting to start...', 0, '{{}}'::jsonb)
"""


def create_app(dsn: str, redis_url: str, pool_size: int = 20) -> FastAPI:
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)
        async with pool.acquire() as conn:
            await conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (LIKE jobs INCLUDING ALL)")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {EVENTS} (LIKE job_events INCLUDING ALL)"
            )
        state["pool"] = pool
        state["arq"] = await create_pool(
            RedisSettings.from_dsn(redis_url), default_queue_name=QUEUE
        )
        yield
        await state["arq"].aclose()
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/jobs", status_code=202)
    async def submit(request: Request) -> JSONResponse:
        body = await request.json()
        job_id = uuid.uuid4()
        async with state["pool"].acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                INSERT,
                job_id,
                body["kind"],
                1,
                json.dumps(body["input"]),
                json.dumps(body.get("metadata", {})),
            )
            await conn.execute(INSERT_EVENT, job_id)
        assert row is not None
        await state["arq"].enqueue_job("run_job", str(job_id), _job_id=str(job_id))
        return JSONResponse(
            {
                "id": str(row["id"]),
                "kind": body["kind"],
                "status": row["status"],
                "input": body["input"],
                "metadata": body.get("metadata", {}),
                "created_at": row["created_at"].isoformat(),
            },
            status_code=202,
        )

    return app


def main() -> None:
    port, dsn, redis_url = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    uvicorn.run(
        create_app(dsn, redis_url),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
