"""Scale: 1, 2 and 4 API processes with 1, 2 and 4 workers against one PostgreSQL and one Redis;
what each job, each status poll and each open event stream costs.

At each size, with the same PostgreSQL connection budget shared by its processes (24 by
default: 12 per process at 1 + 1, 3 at 4 + 4, as a PgBouncer pool would hand them out), on a
fresh database and a Redis server of its own (so Redis's command count and memory are this
run's alone):

1. streams: S clients open `GET /v1/jobs/{id}/events` (SSE) on jobs that stay queued (no worker
   runs yet) and hold them for T seconds: the cost of a client that follows a job and waits;
2. jobs: the load generator of `bench/load.py` (C clients, each submitting a prompt and polling
   it every 0.25 s until it ends, again and again) for T seconds, then a bounded drain;
3. polls: C clients reading one finished job over and over for T seconds.

Per phase: throughput, latency, PostgreSQL transactions (`pg_stat_database.xact_commit` plus
`xact_rollback` of the run's database), peak PostgreSQL connections, Redis commands
(`total_commands_processed`) and memory, and CPU time per unit of work for the API processes,
the workers, the database's PostgreSQL backends and Redis. API processes are
`jobrelay api --workers N` (uvicorn's processes sharing one port, as a pod or a machine runs
them). The load generator runs on the same machine, so on 2 cores the sizes compete for the
same CPU: the per-unit costs are the point, not the totals.

Run:
    python -m bench.scale                 # 20 s per phase, 100 clients, 200 streams
    python -m bench.scale --quick         # 3 s per phase, 2 API + 2 workers only, 20 clients,
                                          # 40 streams
    python -m bench.scale --json FILE     # also write every figure as JSON
It also joins `python -m bench` (through `run(ctx)`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from bench.context import Context
from bench.cpu import CpuMeter
from bench.environment import Backends, Proc, jobrelay_api, jobrelay_worker
from bench.load import Connection, LevelResult, _percentiles, run_level
from bench.report import Report, Row, render
from bench.stack import Stack, Template, stack
from jobrelay.embedded import free_tcp_port, redis_server_executable

SIZES = ((1, 1), (2, 2), (4, 4))
QUICK_SIZES = ((2, 2),)
# A PostgreSQL backend that goes idle less than a second after its last flush of statistics
# keeps the rest pending for up to 10 s (PGSTAT_IDLE_INTERVAL): wait that out after each phase
# so its transactions are counted in it, not in the next.
SETTLE_SECONDS = 11.0
# The run measures capacity, not the per-user limits: one user per client, limits out of reach.
ENV = {"JOBRELAY_RATE_LIMIT_PER_MINUTE": "1000000", "JOBRELAY_MAX_RUNNING_PER_USER": "1000"}
# PostgreSQL connections shared by all the processes of a size, as a PgBouncer pool would give
# them: the same budget at every size, which a server with the default max_connections of 100
# (shared with other work) can spare.
CONNECTIONS = 24
TABLES = ("jobs", "job_events")


# --- counters --------------------------------------------------------------------------------


@dataclass
class Counters:
    """What PostgreSQL and Redis have counted so far for this run."""

    xact_commit: int
    xact_rollback: int
    redis_commands: int
    redis_memory: int
    redis_clients: int

    @classmethod
    async def read(cls, admin_dsn: str, database: str, redis_url: str) -> Counters:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute("SELECT pg_stat_clear_snapshot()")
            row = await conn.fetchrow(
                "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = $1",
                database,
            )
        finally:
            await conn.close()
        client = aioredis.Redis.from_url(redis_url)
        try:
            stats = await client.info("stats")
            memory = await client.info("memory")
            clients = await client.info("clients")
        finally:
            await client.aclose()
        assert row is not None
        return cls(
            xact_commit=int(row["xact_commit"]),
            xact_rollback=int(row["xact_rollback"]),
            # Minus the three INFO commands of this reading itself.
            redis_commands=int(stats["total_commands_processed"]) - 3,
            redis_memory=int(memory["used_memory"]),
            redis_clients=int(clients["connected_clients"]) - 1,
        )


@dataclass
class Phase:
    """One phase at one size: its units of work and what they cost."""

    name: str
    units: int = 0  # jobs completed, polls answered, or stream-seconds held
    seconds: float = 0.0
    latency_ms: dict[str, float | None] = field(default_factory=dict)
    cpu_ms: dict[str, float] = field(default_factory=dict)  # per unit, by process group
    xacts: int = 0
    redis_commands: int = 0
    redis_memory_delta: int = 0
    redis_clients: int = 0
    peak_pg_connections: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.units / self.seconds if self.seconds else 0.0

    def per_unit(self, value: float) -> float:
        return value / self.units if self.units else float("nan")

    def summary(self) -> dict[str, Any]:
        return {
            "units": self.units,
            "seconds": round(self.seconds, 2),
            "per_second": round(self.rate, 1),
            "latency_ms": self.latency_ms,
            "cpu_ms_per_unit": {k: round(v, 3) for k, v in self.cpu_ms.items()},
            "cpu_ms_per_unit_total": round(sum(self.cpu_ms.values()), 3),
            "pg_transactions": self.xacts,
            "pg_transactions_per_unit": round(self.per_unit(self.xacts), 3),
            "redis_commands": self.redis_commands,
            "redis_commands_per_unit": round(self.per_unit(self.redis_commands), 3),
            "redis_memory_delta_bytes": self.redis_memory_delta,
            "redis_clients": self.redis_clients,
            "peak_pg_connections": self.peak_pg_connections,
            **self.extra,
        }


@dataclass
class SizeResult:
    apis: int
    workers: int
    pool_size: int = 0
    phases: list[Phase] = field(default_factory=list)
    table_bytes_per_job: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"scale {self.apis} API + {self.workers} workers"

    def summary(self) -> dict[str, Any]:
        return {
            "api_processes": self.apis,
            "workers": self.workers,
            "pool_size_per_process": self.pool_size,
            "table_bytes_per_job": {k: round(v) for k, v in self.table_bytes_per_job.items()},
            **{p.name: p.summary() for p in self.phases},
        }


# --- processes -------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in task.read_text().split()]
    return found


def process_tree(pid: int) -> list[int]:
    """A process and all its descendants (uvicorn's supervisor and its worker processes)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += _children(current)
    return tree


@contextlib.asynccontextmanager
async def private_redis() -> AsyncIterator[tuple[str, int]]:
    """A redis-server of this run's own on a free port: (base URL, pid)."""
    port = free_tcp_port()
    command = [redis_server_executable(), "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no", "--maxclients", "10000"]
    server = await asyncio.create_subprocess_exec(
        *command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    base = f"redis://127.0.0.1:{port}"
    try:
        client = aioredis.Redis.from_url(f"{base}/0")
        deadline = time.monotonic() + 20
        while True:
            try:
                await client.ping()
                break
            except (OSError, aioredis.ConnectionError):
                if time.monotonic() > deadline or server.returncode is not None:
                    raise RuntimeError("the benchmark's redis-server did not start") from None
                await asyncio.sleep(0.05)
        await client.aclose()
        yield base, server.pid
    finally:
        server.terminate()
        await server.wait()


def pool_size(connections: int, apis: int, workers: int) -> int:
    """Each process's share of the connection budget (every uvicorn process has its own pool)."""
    return max(2, connections // (apis + workers))


async def _start(running: Stack, apis: int, workers: int) -> tuple[Proc, list[Proc]]:
    api = jobrelay_api(running.env)
    api.args += ["--workers", str(apis)]
    running.api = api.start()
    await asyncio.to_thread(api.wait_http, "/healthz", 60.0)
    return api, [jobrelay_worker(running.env) for _ in range(workers)]


async def _wait_for_workers(running: Stack, procs: list[Proc], timeout: float = 60) -> None:
    """Start the workers and wait until each has written ARQ's health check once."""
    client = aioredis.Redis.from_url(running.redis_url)
    key = f"{running.settings.queue_name}:health-check"
    try:
        await client.delete(key)
        for proc in procs:
            proc.start()
        deadline = time.monotonic() + timeout
        while not await client.exists(key):
            if time.monotonic() > deadline or not all(p.alive() for p in procs):
                raise RuntimeError("workers did not start:\n" + procs[0].log()[-3000:])
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()
    await asyncio.sleep(1.0)  # the others' first poll


# --- measuring a phase -----------------------------------------------------------------------


@dataclass
class Meter:
    """CPU, PostgreSQL and Redis counters around one phase."""

    running: Stack
    admin_dsn: str
    api_pid: int
    redis_pid: int
    worker_pids: list[int] = field(default_factory=list)
    cpu: CpuMeter | None = None
    before: Counters | None = None
    started: float = 0.0

    async def start(self) -> None:
        groups = {"api": process_tree(self.api_pid)}
        if self.worker_pids:
            groups["workers"] = list(self.worker_pids)
        self.cpu = CpuMeter(groups, self.running.database, self.admin_dsn)
        self.cpu.groups["redis"] = [self.redis_pid]
        self.before = await self._counters()
        await self.cpu.start()
        self.started = time.monotonic()

    async def _counters(self) -> Counters:
        return await Counters.read(self.admin_dsn, self.running.database, self.running.redis_url)

    async def stop(self, phase: Phase, units: int, seconds: float | None = None) -> Phase:
        await asyncio.sleep(SETTLE_SECONDS)
        assert self.cpu is not None and self.before is not None
        used = await self.cpu.stop()
        after = await self._counters()
        phase.units = units
        phase.seconds = seconds if seconds is not None else time.monotonic() - self.started
        phase.cpu_ms = {name: phase.per_unit(s) * 1000 for name, s in used.items()}
        # Read-only blocks end in ROLLBACK (SQLAlchemy's `connect()`): transactions all the same.
        phase.xacts = (after.xact_commit + after.xact_rollback) - (
            self.before.xact_commit + self.before.xact_rollback
        )
        phase.redis_commands = after.redis_commands - self.before.redis_commands
        phase.redis_memory_delta = after.redis_memory - self.before.redis_memory
        phase.redis_clients = after.redis_clients
        phase.extra["pg_rollbacks"] = after.xact_rollback - self.before.xact_rollback
        return phase


async def _peak_connections(running: Stack, admin_dsn: str, stop: asyncio.Event) -> int:
    conn = await asyncpg.connect(admin_dsn)
    peak = 0
    try:
        while not stop.is_set():
            count = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", running.database
            )
            peak = max(peak, int(count))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)
    finally:
        await conn.close()
    return peak


# --- the phases ------------------------------------------------------------------------------


async def _submit_queued(api: Proc, key: str, count: int) -> list[str]:
    connection = Connection("127.0.0.1", api.port or 0, key)
    ids = []
    try:
        for number in range(count):
            body = {"kind": "prompt.generate", "input": {"manual_prompt": f"held {number}"}}
            status, _, content = await connection.request("POST", "/v1/jobs", body)
            if status != 202:
                raise RuntimeError(f"submit answered {status}: {content[:300]!r}")
            ids.append(json.loads(content)["id"])
    finally:
        connection.close()
    return ids


async def _hold_stream(port: int, key: str, job_id: str, until: float, opened: list[int]) -> None:
    """Open an SSE stream and read whatever comes until `until`, then hang up."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET /v1/jobs/{job_id}/events HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            f"authorization: Bearer {key}\r\naccept: text/event-stream\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"stream answered {head[:60]!r}")
        opened.append(1)
        loop = asyncio.get_running_loop()
        while (left := until - loop.time()) > 0:
            with contextlib.suppress(TimeoutError):
                if not await asyncio.wait_for(reader.read(65536), left):
                    return
    finally:
        writer.close()


async def phase_streams(
    running: Stack, api: Proc, meter: Meter, admin_dsn: str, streams: int, seconds: float
) -> tuple[Phase, list[str]]:
    """Idle followers: SSE streams on queued jobs (no worker runs yet)."""
    assert running.admin is not None
    redis_client = aioredis.Redis.from_url(running.redis_url)
    empty = int((await redis_client.info("memory"))["used_memory"])
    job_ids = await _submit_queued(api, running.admin.key, streams)
    queued = int((await redis_client.info("memory"))["used_memory"])
    await redis_client.aclose()
    await meter.start()
    stop = asyncio.Event()
    peak = asyncio.create_task(_peak_connections(running, admin_dsn, stop))
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    opened: list[int] = []

    async def redis_clients_midway() -> int:
        await asyncio.sleep(seconds / 2)
        client = aioredis.Redis.from_url(running.redis_url)
        try:
            return int((await client.info("clients"))["connected_clients"]) - 1
        finally:
            await client.aclose()

    midway = asyncio.create_task(redis_clients_midway())
    await asyncio.gather(
        *(_hold_stream(api.port or 0, running.admin.key, j, until, opened) for j in job_ids)
    )
    stop.set()
    phase = Phase("streams", peak_pg_connections=await peak)
    phase.extra["streams"] = len(opened)
    phase.extra["redis_clients_while_open"] = await midway
    phase.extra["redis_bytes_per_queued_job"] = round((queued - empty) / max(1, streams))
    # The unit is one stream held for one second.
    return await meter.stop(phase, units=round(len(opened) * seconds), seconds=seconds), job_ids


async def phase_jobs(
    running: Stack, api: Proc, meter: Meter, keys: Sequence[str], clients: int, seconds: float
) -> Phase:
    """The load generator's submit-and-poll clients."""
    assert running.admin is not None
    await meter.start()
    result: LevelResult = await run_level(
        clients,
        seconds,
        base_url=api.url,
        keys=keys,
        admin_key=running.admin.key,
        dsn=running.dsn,
    )
    phase = Phase("jobs", peak_pg_connections=result.peak_pg_connections)
    phase.latency_ms = {
        **{f"submit_{k}": v for k, v in _percentiles(result.submit_ms).items()},
        **{f"status_{k}": v for k, v in _percentiles(result.status_ms).items()},
    }
    phase.extra.update(
        jobs_accepted=len(result.accepted),
        jobs_unfinished=result.unfinished,
        server_errors=result.server_errors,
        status_polls_per_job=round(len(result.status_ms) / max(1, result.completed), 2),
        requests_per_second=round(result.rate, 1),
    )
    await meter.stop(phase, units=result.completed)
    phase.seconds = result.seconds
    return phase


async def _poll(
    port: int, key: str, job_id: str, until: float, timings: list[float], refused: Counter[int]
) -> None:
    connection = Connection("127.0.0.1", port, key)
    loop = asyncio.get_running_loop()
    try:
        while loop.time() < until:
            started = time.perf_counter()
            status, _, _ = await connection.request("GET", f"/v1/jobs/{job_id}")
            if status != 200:  # shed load (a pool wait ran out): counted, and not a poll served
                refused[status] += 1
                await asyncio.sleep(0.1)
                continue
            timings.append((time.perf_counter() - started) * 1000)
    finally:
        connection.close()


async def phase_polls(
    running: Stack, api: Proc, meter: Meter, job_id: str, clients: int, seconds: float
) -> Phase:
    """Clients that only poll a job's status, as a waiting browser does."""
    assert running.admin is not None
    await meter.start()
    stop = asyncio.Event()
    peak = asyncio.create_task(_peak_connections(running, meter.admin_dsn, stop))
    until = asyncio.get_running_loop().time() + seconds
    timings: list[float] = []
    refused: Counter[int] = Counter()
    await asyncio.gather(
        *(
            _poll(api.port or 0, running.admin.key, job_id, until, timings, refused)
            for _ in range(clients)
        )
    )
    stop.set()
    phase = Phase("polls", peak_pg_connections=await peak)
    phase.latency_ms = _percentiles(timings)
    phase.extra["refused"] = dict(refused)
    return await meter.stop(phase, units=len(timings), seconds=seconds)


async def _table_bytes_per_job(running: Stack) -> dict[str, float]:
    conn = await running.connect()
    try:
        await conn.execute("VACUUM ANALYZE jobs, job_events")
        jobs = int(await conn.fetchval("SELECT count(*) FROM jobs"))
        sizes = {
            table: int(await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", table))
            for table in TABLES
        }
        events = int(await conn.fetchval("SELECT count(*) FROM job_events"))
    finally:
        await conn.close()
    per_job = {f"{table}_bytes": size / max(1, jobs) for table, size in sizes.items()}
    per_job["events_per_job"] = events / max(1, jobs)
    return per_job


async def run_size(
    template: Template,
    apis: int,
    workers: int,
    *,
    clients: int,
    streams: int,
    seconds: float,
    connections: int = CONNECTIONS,
    log: Any = print,
) -> SizeResult:
    result = SizeResult(apis, workers, pool_size(connections, apis, workers))
    env = {**ENV, "JOBRELAY_DB_POOL_SIZE": str(result.pool_size)}
    async with private_redis() as (redis_base, redis_pid):
        backends = Backends(template.backends.postgres_dsn, redis_base, template.backends.origin)
        shared = Template(backends)
        shared.name = await template.ensure()
        async with stack(shared, env) as running:
            api, worker_procs = await _start(running, apis, workers)
            try:
                users = await running.make_users(clients, tokens=10**12)
                admin_dsn = template.backends.postgres_dsn
                meter = Meter(running, admin_dsn, api.pid, redis_pid)
                log(f"{result.label}: {streams} streams for {seconds:.0f} s")
                streams_phase, held = await phase_streams(
                    running, api, meter, admin_dsn, streams, seconds
                )
                result.phases.append(streams_phase)
                await _wait_for_workers(running, worker_procs)
                meter.worker_pids = [w.pid for w in worker_procs]
                log(f"{result.label}: {clients} submit-and-poll clients for {seconds:.0f} s")
                keys = [u.key for u in users]
                result.phases.append(await phase_jobs(running, api, meter, keys, clients, seconds))
                log(f"{result.label}: {clients} polling clients for {seconds:.0f} s")
                result.phases.append(
                    await phase_polls(running, api, meter, held[0], clients, seconds)
                )
                result.table_bytes_per_job = await _table_bytes_per_job(running)
                log(f"{result.label}: {json.dumps(result.summary())}")
            finally:
                for proc in worker_procs:
                    proc.stop()
    return result


# --- reporting -------------------------------------------------------------------------------


def rows(results: Sequence[SizeResult]) -> list[Row]:
    made: list[Row] = []
    for r in results:
        streams, jobs, polls = r.phases
        lat = jobs.latency_ms
        cpu = ", ".join(f"{k} {v:.2f}" for k, v in jobs.cpu_ms.items())
        poll_cpu = ", ".join(f"{k} {v:.3f}" for k, v in polls.cpu_ms.items())
        stream_cpu = ", ".join(f"{k} {v:.3f}" for k, v in streams.cpu_ms.items())
        made += [
            Row(r.label, "jobs completed/s", jobs.rate, "jobs/s",
                note=f"{jobs.extra['requests_per_second']} req/s with "
                     f"{jobs.extra['status_polls_per_job']} polls per job; "
                     f"{jobs.extra['server_errors']} 5xx"),
            Row(r.label, "submit p50 / p95 / p99", lat["submit_p50"] or 0, "ms",
                note=f"p95 {lat['submit_p95']} ms, p99 {lat['submit_p99']} ms"),
            Row(r.label, "CPU per job (all processes)", sum(jobs.cpu_ms.values()), "ms",
                note=cpu),
            Row(r.label, "PostgreSQL transactions per job", jobs.per_unit(jobs.xacts), ""),
            Row(r.label, "Redis commands per job", jobs.per_unit(jobs.redis_commands), ""),
            Row(r.label, "peak PostgreSQL connections", jobs.peak_pg_connections, ""),
            Row(r.label, "status polls/s", polls.rate, "req/s",
                note=f"p50 {polls.latency_ms['p50']} ms, p99 {polls.latency_ms['p99']} ms; "
                     f"refused {polls.extra['refused'] or 0}"),
            Row(r.label, "CPU per status poll", sum(polls.cpu_ms.values()), "ms", note=poll_cpu),
            Row(r.label, "PostgreSQL transactions per poll", polls.per_unit(polls.xacts), ""),
            Row(r.label, "CPU per open stream-second", sum(streams.cpu_ms.values()), "ms",
                note=stream_cpu),
            Row(r.label, "PostgreSQL transactions per stream-second",
                streams.per_unit(streams.xacts), "",
                note=f"{streams.extra['streams']} streams; Redis clients while open "
                     f"{streams.extra['redis_clients_while_open']}"),
            Row(r.label, "table bytes per job", sum(
                v for k, v in r.table_bytes_per_job.items() if k.endswith("_bytes")), "B",
                note=", ".join(f"{k} {v:.0f}" for k, v in r.table_bytes_per_job.items())),
        ]  # fmt: skip
    return made


async def measure(
    template: Template,
    sizes: Sequence[tuple[int, int]],
    *,
    clients: int,
    streams: int,
    seconds: float,
    connections: int = CONNECTIONS,
    log: Any = print,
    json_path: Path | None = None,
) -> list[SizeResult]:
    results = []
    for apis, workers in sizes:
        results.append(
            await run_size(
                template,
                apis,
                workers,
                clients=clients,
                streams=streams,
                seconds=seconds,
                connections=connections,
                log=log,
            )
        )
        if json_path is not None:  # after each size, so a failed later size keeps these
            figures = json.dumps([r.summary() for r in results], indent=2)
            await asyncio.to_thread(json_path.write_text, figures + "\n")
    return results


async def run(ctx: Context) -> list[Row]:
    """Entry point for `python -m bench`."""
    results = await measure(
        ctx.template,
        QUICK_SIZES if ctx.quick else SIZES,
        clients=ctx.size(100, 20),
        streams=ctx.size(200, 40),
        seconds=ctx.seconds(20, 3),
        log=ctx.log,
    )
    return rows(results)


def _sizes(text: str) -> tuple[int, int]:
    apis, _, workers = text.partition("x")
    return int(apis), int(workers or apis)


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="3 s per phase, 2 API + 2 workers only"
    )
    parser.add_argument("--seconds", type=float, help="seconds per phase")
    parser.add_argument("--clients", type=int, help="load clients (default 100; quick 20)")
    parser.add_argument("--streams", type=int, help="SSE streams (default 200; quick 40)")
    parser.add_argument(
        "--sizes", nargs="+", type=_sizes, metavar="APISxWORKERS", help="e.g. 1x1 2x2 4x4"
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=CONNECTIONS,
        help=f"PostgreSQL connections shared by a size's processes (default {CONNECTIONS})",
    )
    parser.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    args = parser.parse_args(argv)
    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    backends = Backends.find()
    template = Template(backends)
    try:
        results = await measure(
            template,
            sizes,
            clients=args.clients or (20 if args.quick else 100),
            streams=args.streams or (40 if args.quick else 200),
            seconds=args.seconds or (3.0 if args.quick else 20.0),
            connections=args.connections,
            log=lambda m: print(m, file=sys.stderr, flush=True),
            json_path=Path(args.json) if args.json else None,
        )
    finally:
        await template.drop()
        backends.stop()
    report = Report()
    report.add(rows(results))
    print(render(report))
    failed = any(
        r.phases[1].extra["server_errors"] or r.phases[1].extra["jobs_unfinished"] for r in results
    )
    return 1 if failed else 0


if __name__ == "__main__":
    from bench.httpload import run_sync

    sys.exit(run_sync(main(sys.argv[1:])))
