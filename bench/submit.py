"""Submit path: `POST /v1/jobs` at 32 concurrent clients against one API process, against the
same route written by hand (FastAPI + asyncpg: the job and its event in one transaction, then
ARQ `enqueue_job`; `bench/baseline_app.py`) on the same kind of server.

Both servers run at once (the idle one costs nothing) and are measured in alternating rounds;
the best round of each counts, so a burst of noise from elsewhere on the machine hurts neither.
Each client connection submits as its own user (32 users), with the rate limit raised so the
limiter is exercised (one Redis round trip per request) but never refuses.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from typing import Any

from bench import httpload, memory
from bench.context import Context
from bench.cpu import CpuMeter, describe
from bench.environment import Proc, child_env
from bench.httpload import LoadResult
from bench.report import Row
from bench.stack import stack
from jobrelay.embedded import free_tcp_port

CONNECTIONS = 32
BODY = {
    "kind": "prompt.generate",
    "input": {"manual_prompt": "Write a friendly welcome email for the new students of the course"},
    "metadata": {"source": "bench"},
}
P99_TARGET_MS = 40.0
RATIO_TARGET = 1.0


@dataclass(frozen=True)
class Requests:
    """Request `n` for the jobrelay API: the same body, user `n % len(keys)`."""

    prebuilt: tuple[bytes, ...]

    @classmethod
    def submit(cls, port: int, keys: list[str], body: dict[str, Any] | None = None) -> Requests:
        """`POST /v1/jobs` with each key in turn (the benchmark's BODY unless given)."""
        encoded = json.dumps(BODY if body is None else body).encode()
        return cls(
            tuple(
                httpload.request_bytes(
                    "POST",
                    "/v1/jobs",
                    port=port,
                    headers={"authorization": f"Bearer {key}"},
                    body=encoded,
                )
                for key in keys
            )
        )

    def __call__(self, n: int) -> bytes:
        return self.prebuilt[n % len(self.prebuilt)]


@dataclass
class Measured:
    load: LoadResult
    cpu_ms: dict[str, float]  # CPU per request, by process group (server, postgres, redis)
    connections_opened: int  # PostgreSQL connections opened during the run

    @property
    def server_cpu_ms(self) -> float:
        return self.cpu_ms.get("server", 0.0)

    @classmethod
    async def run(
        cls,
        proc: Proc,
        requests: Requests,
        meter: CpuMeter,
        *,
        duration: float,
        warmup: float,
        processes: int,
    ) -> Measured:
        await httpload.run(proc.port or 0, requests, connections=CONNECTIONS, duration=warmup)
        await meter.start()
        load = await asyncio.to_thread(
            httpload.run_processes,
            proc.port or 0,
            requests,
            processes=processes,
            connections=CONNECTIONS,
            duration=duration,
        )
        await meter.stop()
        return cls(load, meter.per(load.count), meter.sessions)


async def run(ctx: Context) -> list[Row]:
    duration = ctx.seconds(8.0, 1.0)
    warmup = ctx.seconds(2.0, 0.3)
    rounds = 2 if not ctx.quick else 1
    processes = 1
    async with stack(ctx.template, {"JOBRELAY_RATE_LIMIT_PER_MINUTE": "1000000000"}) as s:
        api = s.start_api(wait=False)
        port = free_tcp_port()
        baseline = Proc(
            "baseline",
            [sys.executable, "-m", "bench.baseline_app", str(port), s.dsn, s.redis_url],
            child_env({}),
            port=port,
        ).start()
        try:
            users = await s.make_users(CONNECTIONS)
            api.wait_http("/healthz")
            baseline.wait_http("/openapi.json")
            ours_requests = Requests.submit(api.port or 0, [u.key for u in users])
            base_requests = Requests(
                (httpload.request_bytes("POST", "/jobs", port=port, body=BODY),)
            )
            best_ours: Measured | None = None
            best_base: Measured | None = None
            meters = {
                name: CpuMeter.for_processes(
                    {"server": proc.pid},
                    admin_dsn=s.backends.postgres_dsn,
                    database=s.database,
                    redis_url=s.redis_url,
                )
                for name, proc in (("baseline", baseline), ("jobrelay", api))
            }
            for round_no in range(rounds):
                ctx.log(f"submit: round {round_no + 1}/{rounds}: baseline")
                base = await Measured.run(
                    baseline,
                    base_requests,
                    meters["baseline"],
                    duration=duration,
                    warmup=warmup,
                    processes=processes,
                )
                ctx.log(f"submit: round {round_no + 1}/{rounds}: jobrelay")
                ours = await Measured.run(
                    api,
                    ours_requests,
                    meters["jobrelay"],
                    duration=duration,
                    warmup=warmup,
                    processes=processes,
                )
                for name, m in (("baseline", base), ("jobrelay", ours)):
                    ctx.log(
                        f"  {name}: {m.load.rate:,.0f} req/s p50 {m.load.p50:.1f} ms "
                        f"p99 {m.load.p99:.1f} ms, CPU ms/req: {describe(m.cpu_ms)}, "
                        f"client {m.load.client_cores:.0%} of a core, "
                        f"{m.connections_opened} PostgreSQL connections opened, "
                        f"statuses {dict(m.load.statuses)}"
                    )
                if best_base is None or base.load.rate > best_base.load.rate:
                    best_base = base
                if best_ours is None or ours.load.rate > best_ours.load.rate:
                    best_ours = ours
            assert best_ours is not None and best_base is not None
            single = ctx.size(500, 50)
            one_ours = await httpload.run(api.port or 0, ours_requests, connections=1, total=single)
            one_base = await httpload.run(port, base_requests, connections=1, total=single)
            ctx.log(
                f"submit: 1 client: jobrelay p50 {one_ours.p50:.2f} p99 {one_ours.p99:.2f} ms, "
                f"baseline p50 {one_base.p50:.2f} p99 {one_base.p99:.2f} ms"
            )
            health_seconds = ctx.seconds(3.0, 1.0)
            health = {}
            for name, target in (("jobrelay", api.port or 0), ("baseline", port)):
                probe = Requests((httpload.request_bytes("GET", "/healthz", port=target),))
                await httpload.run(target, probe, connections=CONNECTIONS, duration=0.3)
                health[name] = await httpload.run(
                    target, probe, connections=CONNECTIONS, duration=health_seconds
                )
            ctx.log(
                f"submit: GET /healthz: jobrelay {health['jobrelay'].rate:,.0f} req/s, "
                f"bare FastAPI {health['baseline'].rate:,.0f} req/s"
            )
            api_rss = memory.rss(api)
        finally:
            baseline.stop()
    ours_load, base_load = best_ours.load, best_base.load
    bad = ours_load.unexpected([202])
    note = f"unexpected statuses {bad}" if bad else ""
    ratio = ours_load.rate / base_load.rate if base_load.rate else 0.0
    client = max(ours_load.client_cores, base_load.client_cores)
    return [
        Row(
            "submit",
            f"requests/s, {CONNECTIONS} clients",
            ours_load.rate,
            "req/s",
            baseline=base_load.rate,
            target=f">= {RATIO_TARGET:.1f}x by hand",
            met=ratio >= RATIO_TARGET and not bad,
            note=note or f"load generator used at most {client:.0%} of one core",
        ),
        Row("submit", f"p50, {CONNECTIONS} clients", ours_load.p50, "ms", baseline=base_load.p50),
        Row(
            "submit",
            f"p99, {CONNECTIONS} clients",
            ours_load.p99,
            "ms",
            baseline=base_load.p99,
            target=f"<= {P99_TARGET_MS:.0f} ms",
            met=ours_load.p99 <= P99_TARGET_MS,
        ),
        Row("submit", "p50, 1 client", one_ours.p50, "ms", baseline=one_base.p50),
        Row("submit", "p99, 1 client", one_ours.p99, "ms", baseline=one_base.p99),
        Row(
            "submit",
            "server CPU per request",
            best_ours.server_cpu_ms,
            "ms",
            baseline=best_base.server_cpu_ms,
        ),
        Row(
            "submit",
            "PostgreSQL CPU per request",
            best_ours.cpu_ms.get("postgres", 0.0),
            "ms",
            baseline=best_base.cpu_ms.get("postgres", 0.0),
        ),
        Row(
            "submit",
            "Redis CPU per request",
            best_ours.cpu_ms.get("redis", 0.0),
            "ms",
            baseline=best_base.cpu_ms.get("redis", 0.0),
        ),
        Row(
            "submit",
            f"GET /healthz, {CONNECTIONS} clients (the fixed cost of a request)",
            health["jobrelay"].rate,
            "req/s",
            baseline=health["baseline"].rate,
            note="baseline: the same route on a bare FastAPI app",
        ),
        Row("memory", "API RSS after the submit run", api_rss, "MB"),
    ]
