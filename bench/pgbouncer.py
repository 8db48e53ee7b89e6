"""What PgBouncer in transaction mode costs: the submit and status paths of one API process
direct to PostgreSQL, direct with `JOBRELAY_DB_PGBOUNCER=true` (the cost of the mode itself:
no prepared statement reused, no autocommit reads), and through a real PgBouncer (stock
settings plus `pool_mode = transaction`, Debian package `pgbouncer`).

The three are measured one after another on the same database, in alternating rounds; the
best round of each counts (the highest submit rate, the lowest read latency, each on its own).
The direct run is each row's baseline.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from tests.support.pgbouncer import PgBouncer

from bench import httpload
from bench.context import Context
from bench.environment import jobrelay_api
from bench.httpload import LoadResult
from bench.report import Row
from bench.stack import stack
from bench.submit import Requests

CONNECTIONS = 32


async def _measure(
    env: Mapping[str, str], keys: list[str], job_ids: list[str], seconds: float, samples: int
) -> tuple[LoadResult, LoadResult]:
    """(32 clients submitting, 1 client reading a job) against a fresh API with `env`."""
    api = jobrelay_api(dict(env)).start()
    try:
        api.wait_http("/healthz")
        port = api.port or 0
        submits = Requests.submit(port, keys)
        await httpload.run(port, submits, connections=CONNECTIONS, duration=0.5)  # warm up
        submitted = await httpload.run(
            port, submits, connections=CONNECTIONS, duration=seconds, warmup=0.3
        )
        auth = {"authorization": f"Bearer {keys[0]}"}
        reads = [
            httpload.request_bytes("GET", f"/v1/jobs/{job_id}", port=port, headers=auth)
            for job_id in job_ids
        ]
        await httpload.run(port, lambda n: reads[n % len(reads)], connections=1, total=50)
        read = await httpload.run(
            port, lambda n: reads[n % len(reads)], connections=1, total=samples
        )
        return submitted, read
    finally:
        api.stop()


async def run(ctx: Context) -> list[Row]:
    seconds = ctx.seconds(5.0, 1.5)
    samples = ctx.size(2000, 300)
    rounds = ctx.size(3, 1)
    bouncer = PgBouncer(ctx.template.backends.postgres_dsn).start()
    try:
        async with stack(ctx.template, {"JOBRELAY_RATE_LIMIT_PER_MINUTE": "1000000000"}) as s:
            users = await s.make_users(CONNECTIONS)
            keys = [user.key for user in users]
            api = s.start_api()
            port = api.port or 0
            body = json.dumps({"kind": "prompt.generate", "input": {"manual_prompt": "x"}})
            made = await httpload.run(
                port,
                lambda n: httpload.request_bytes(
                    "POST", "/v1/jobs", port=port,
                    headers={"authorization": f"Bearer {keys[0]}"}, body=body.encode(),
                ),
                connections=1, total=20, keep_bodies=True,
            )  # fmt: skip
            s.stop_processes()
            job_ids = [json.loads(b)["id"] for b in made.bodies]
            ways = {
                "direct": dict(s.env),
                "direct, DB_PGBOUNCER=true": {**s.env, "JOBRELAY_DB_PGBOUNCER": "true"},
                "through PgBouncer": {
                    **s.env,
                    "JOBRELAY_DB_PGBOUNCER": "true",
                    "JOBRELAY_DATABASE_URL": bouncer.url(s.database),
                },
            }
            best: dict[str, tuple[LoadResult, LoadResult]] = {}
            for _ in range(rounds):
                for name, env in ways.items():
                    ctx.log(f"pgbouncer: {name}")
                    submitted, read = await _measure(env, keys, job_ids, seconds, samples)
                    ctx.log(
                        f"pgbouncer: {name}: submit {submitted.rate:,.0f}/s p99 "
                        f"{submitted.p99:.1f} ms; GET p50 {read.p50:.2f} ms "
                        f"{dict(submitted.statuses)}"
                    )
                    kept_submit, kept_read = best.get(name, (submitted, read))
                    best[name] = (
                        submitted if submitted.rate >= kept_submit.rate else kept_submit,
                        read if read.p50 <= kept_read.p50 else kept_read,
                    )
    finally:
        bouncer.stop()
    direct_submit, direct_read = best["direct"]
    rows = []
    for name in ("direct, DB_PGBOUNCER=true", "through PgBouncer"):
        submitted, read = best[name]
        rows += [
            Row("pgbouncer", f"submit, 32 clients, {name}", submitted.rate, "req/s",
                baseline=direct_submit.rate,
                note=f"p99 {submitted.p99:.1f} ms (direct {direct_submit.p99:.1f} ms)"),
            Row("pgbouncer", f"GET job, 1 client, p50, {name}", read.p50, "ms",
                baseline=direct_read.p50,
                note=f"p99 {read.p99:.2f} ms (direct {direct_read.p99:.2f} ms)"),
        ]  # fmt: skip
    return rows
