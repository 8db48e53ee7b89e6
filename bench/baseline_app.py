"""The submit benchmark's baseline: a bare FastAPI route that inserts one row of the same size
as a submitted job, through a plain asyncpg pool, on the same kind of uvicorn server.

It stands for the least any HTTP-to-PostgreSQL service on this machine can cost: no auth, no
validation beyond JSON parsing, no Redis, one statement per request. The table is a copy of
`jobs` with its indexes (`LIKE jobs INCLUDING ALL`), so index upkeep is the same for both.

Run: `python -m bench.baseline_app PORT DSN`.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

TABLE = "bench_baseline_jobs"
INSERT = f"""
INSERT INTO {TABLE} (id, kind, status, progress, message, user_id, input, metadata,
                     deadline_seconds, max_attempts)
VALUES ($1, $2, 'queued', 0, 'Task queued, waiting to start...', $3, $4::jsonb, $5::jsonb, 900, 3)
RETURNING id, status, created_at
"""


def create_app(dsn: str, pool_size: int = 10) -> FastAPI:
    state: dict[str, asyncpg.Pool] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)
        async with pool.acquire() as conn:
            await conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (LIKE jobs INCLUDING ALL)")
        state["pool"] = pool
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/jobs", status_code=202)
    async def submit(request: Request) -> JSONResponse:
        body = await request.json()
        row = await state["pool"].fetchrow(
            INSERT,
            uuid.uuid4(),
            body["kind"],
            1,
            json.dumps(body["input"]),
            json.dumps(body.get("metadata", {})),
        )
        assert row is not None
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
    port, dsn = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(create_app(dsn), host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
