"""Status path: `GET /v1/jobs/{id}` and the first page of `GET /v1/jobs` with filters, with a
million jobs in the table (100,000 with --quick).

The table is filled server-side with one `INSERT ... SELECT generate_series` (with every index
in place, as production would have them): 1000 owners, the three kinds, a realistic spread of
statuses (70% completed, 10% failed, 5% canceled, 10% queued, 5% processing) over a month of
`created_at`. Events are left out: neither read touches them. Reads are made at 1 client (the
latency of one poll) and at 32 clients (polling under load).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass

import asyncpg

from bench import httpload
from bench.context import Context
from bench.report import Row
from bench.stack import stack

OWNERS = 1000
GET_P99_TARGET_MS = 10.0
LIST_TARGET_MS = 20.0

FILL = """
INSERT INTO jobs (id, kind, status, progress, message, user_id, input, result, error, attempts,
                  max_attempts, metadata, deadline_seconds, created_at, updated_at, started_at,
                  completed_at)
SELECT gen_random_uuid(), kind, status,
       CASE status WHEN 'completed' THEN 100 WHEN 'queued' THEN 0 ELSE 50 END,
       CASE status WHEN 'completed' THEN 'Prompt generated successfully'
                   WHEN 'queued' THEN 'Task queued, waiting to start...' ELSE 'Working...' END,
       owners[1 + (g * 7919) % cardinality(owners)],
       jsonb_build_object('manual_prompt', 'Explain topic number ' || g || ' to a new student'),
       CASE WHEN status = 'completed' THEN jsonb_build_object(
           'prompt', 'You are an expert assistant. Task: explain topic number ' || g,
           'fallback', false, 'tokens_used', 700, 'model', 'offline') END,
       CASE WHEN status = 'failed' THEN
           '{"code": "timeout", "message": "No result arrived before the deadline."}'::jsonb END,
       CASE status WHEN 'queued' THEN 0 ELSE 1 END, 3, '{}'::jsonb, 900,
       created, created,
       CASE WHEN status <> 'queued' THEN created + interval '1 second' END,
       CASE WHEN status IN ('completed', 'failed', 'canceled') THEN created + interval '3 seconds' END
FROM generate_series($1::bigint, $2::bigint) AS g,
     LATERAL (SELECT $3::bigint[] AS owners,
                     now() - ($4::bigint - g) * interval '2.6 seconds' AS created,
                     (ARRAY['prompt.generate', 'quiz.generate', 'records.ingest'])[1 + g % 3] AS kind,
                     CASE WHEN g % 20 < 14 THEN 'completed' WHEN g % 20 < 16 THEN 'failed'
                          WHEN g % 20 = 16 THEN 'canceled' WHEN g % 20 < 19 THEN 'queued'
                          ELSE 'processing' END AS status) AS spread
"""


@dataclass(frozen=True)
class GetJobs:
    """`GET /v1/jobs/{id}` for a fixed random sample of ids, as the admin."""

    prebuilt: tuple[bytes, ...]

    def __call__(self, n: int) -> bytes:
        return self.prebuilt[n % len(self.prebuilt)]


async def fill(conn: asyncpg.Connection, rows: int, owners: list[int]) -> float:
    """Insert `rows` jobs in chunks, then vacuum and analyze; returns the seconds it took."""
    began = time.perf_counter()
    chunk = 100_000
    for start in range(1, rows + 1, chunk):
        end = min(rows, start + chunk - 1)
        await conn.execute(FILL, start, end, owners, rows)
    await conn.execute("VACUUM ANALYZE jobs")
    # Write the fill's pages out now: left to the checkpointer, that write-back (hundreds of
    # MB) ran during the reads measured next and took CPU and disk from them.
    await conn.execute("CHECKPOINT")
    return time.perf_counter() - began


async def run(ctx: Context) -> list[Row]:
    rows = ctx.size(1_000_000, 20_000)
    samples = ctx.size(3000, 200)
    list_samples = ctx.size(300, 30)
    async with stack(ctx.template) as s:
        assert s.admin is not None
        api = s.start_api(wait=False)  # starts while the table fills
        owner = (await s.make_users(1))[0]
        conn = await s.connect()
        try:
            owner_ids = [
                int(r["id"])
                for r in await conn.fetch(
                    "INSERT INTO users (name, role, tokens, webhook_secret) "
                    "SELECT 'owner-' || g, 'user', 0, 'whsec_unused' "
                    "FROM generate_series(1, $1) g RETURNING id",
                    OWNERS - 1,
                )
            ]
            ctx.log(f"status: filling {rows:,} jobs")
            seconds = await fill(conn, rows, [owner.id, *owner_ids])
            ctx.log(f"status: filled in {seconds:.1f} s")
            ids = [
                str(r["id"])
                for r in await conn.fetch(
                    "SELECT id FROM jobs TABLESAMPLE SYSTEM (2) LIMIT $1", samples
                )
            ]
            random.Random(7).shuffle(ids)
        finally:
            await conn.close()
        api.wait_http("/healthz")
        port = api.port or 0
        admin_auth = {"authorization": f"Bearer {s.admin.key}"}
        gets = GetJobs(
            tuple(
                httpload.request_bytes("GET", f"/v1/jobs/{i}", port=port, headers=admin_auth)
                for i in ids
            )
        )
        await httpload.run(port, gets, connections=4, total=200)  # warm the pool and caches
        one = await httpload.run(port, gets, connections=1, total=samples)
        many = await httpload.run(
            port, gets, connections=32, duration=ctx.seconds(5.0, 1.0), warmup=0.3
        )
        ctx.log(
            f"status: GET 1 client p50 {one.p50:.2f} p99 {one.p99:.2f} ms; 32 clients "
            f"{many.rate:,.0f}/s p50 {many.p50:.2f} p99 {many.p99:.2f} ms {dict(many.statuses)}"
        )
        lists = {
            "?status=failed": (admin_auth, "/v1/jobs?status=failed"),
            "?kind=quiz.generate": (admin_auth, "/v1/jobs?kind=quiz.generate"),
            "?kind=records.ingest&status=processing": (
                admin_auth,
                "/v1/jobs?kind=records.ingest&status=processing",
            ),
            f"?user_id=<one of {OWNERS}>": (admin_auth, f"/v1/jobs?user_id={owner.id}"),
            "user's own, ?status=completed": (
                {"authorization": f"Bearer {owner.key}"},
                "/v1/jobs?status=completed",
            ),
        }
        list_results = {}
        for label, (auth, path) in lists.items():
            request = httpload.request_bytes("GET", path, port=port, headers=auth)
            await httpload.run(port, lambda n, r=request: r, connections=1, total=10)
            result = await httpload.run(
                port, lambda n, r=request: r, connections=1, total=list_samples, keep_bodies=True
            )
            items = len(json.loads(result.bodies[-1])["items"]) if result.bodies else 0
            list_results[label] = (result, items)
            ctx.log(
                f"status: list {label}: p50 {result.p50:.2f} p99 {result.p99:.2f} ms, {items} items"
            )
    out = [
        Row("status", "jobs in the table", rows, note=f"filled in {seconds:.1f} s"),
        Row("status", "GET job, 1 client, p50", one.p50, "ms"),
        Row(
            "status",
            "GET job, 1 client, p99",
            one.p99,
            "ms",
            target=f"< {GET_P99_TARGET_MS:.0f} ms",
            met=one.p99 < GET_P99_TARGET_MS and not one.unexpected([200]),
        ),
        Row("status", "GET job, 32 clients, requests/s", many.rate, "req/s"),
        Row("status", "GET job, 32 clients, p50", many.p50, "ms"),
        Row(
            "status",
            "GET job, 32 clients, p99",
            many.p99,
            "ms",
            target=f"< {GET_P99_TARGET_MS:.0f} ms",
            met=many.p99 < GET_P99_TARGET_MS and not many.unexpected([200]),
        ),
    ]
    for label, (result, items) in list_results.items():
        out.append(
            Row(
                "status",
                f"list {label}, p99",
                result.p99,
                "ms",
                target=f"< {LIST_TARGET_MS:.0f} ms",
                met=result.p99 < LIST_TARGET_MS and items == 20 and not result.unexpected([200]),
                note=f"p50 {result.p50:.2f} ms, {items} items on the page",
            )
        )
    return out
