"""Draining a backlog: 3000 queued `prompt.generate` jobs (500 with --quick) run by one worker
process, against the same durable work written by hand (bare ARQ + asyncpg, three transactions
per job: `bench/byhand_worker.py`) and, when the optional `bench` extra is installed, Celery with
two prefork processes writing the same rows (`bench/celery_drain.py`).

Each side gets a fresh database with the jobs and their `queued` events already stored, and the
jobs in Redis, deferred by a few seconds so that the worker is up and idle when they come due.
The rate comes from PostgreSQL's timestamps (the first `started_at` to the last
`completed_at`); worker CPU is the worker processes' CPU time over the drain; PostgreSQL
transactions are `pg_stat_database.xact_commit` of the database over the drain, less the
benchmark's own polling.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from bench.context import Context
from bench.cpu import CpuMeter
from bench.environment import REPO, Proc, child_env
from bench.report import Row
from bench.stack import Stack, stack
from jobrelay.jobs.lifecycle import QUEUED_MESSAGE
from jobrelay.queue import Queue

USERS = 50
DEFER_SECONDS = 4.0
EXPECTED_PROGRESS = [0, 10, 30, 50, 70, 90, 100]
TARGET_BYHAND = 1.5
TARGET_CELERY = 2.5
TARGET_CPU_MS = 1.0
TARGET_XACTS = 1.0
CELERY_REQUIREMENTS = ("celery[redis]>=5.7,<5.8", "psycopg[binary]>=3.1")

_FILL = """
WITH new AS (
    INSERT INTO jobs (id, kind, status, progress, message, user_id, input, metadata,
                      deadline_seconds, max_attempts, submitted_by)
    SELECT id, 'prompt.generate', 'queued', 0, $3, u, $4::jsonb, '{"run": "drain"}'::jsonb,
           900, 3, u
    FROM unnest($1::uuid[], $2::bigint[]) AS t(id, u)
    RETURNING id, status, progress, message
)
INSERT INTO job_events (job_id, type, status, progress, message, attempt, data)
SELECT id, 'status', status, progress, message, 0, '{}'::jsonb FROM new
"""


@dataclass
class Drain:
    jobs_per_second: float
    cpu_ms: float
    xacts_per_job: float
    problems: list[str]
    run_p50_ms: float  # claim to completion of one job, median


async def _fill(s: Stack, count: int) -> list[uuid.UUID]:
    users = await s.make_users(USERS)
    ids = [uuid.uuid4() for _ in range(count)]
    owners = [users[i % len(users)].id for i in range(count)]
    prompt = json.dumps({"manual_prompt": "Explain photosynthesis to a ten year old"})
    conn = await s.connect()
    try:
        await conn.execute(_FILL, ids, owners, QUEUED_MESSAGE, prompt)
    finally:
        await conn.close()
    return ids


async def _enqueue(s: Stack, ids: list[uuid.UUID], defer: float) -> None:
    queue = await Queue.connect(s.settings)
    try:
        pending = iter(ids)

        async def producer() -> None:
            for job_id in pending:
                await queue.enqueue_job(job_id, defer_seconds=defer)

        await asyncio.gather(*(producer() for _ in range(32)))
    finally:
        await queue.close()


async def _xact_commit(s: Stack) -> int:
    conn = await asyncpg.connect(s.backends.postgres_dsn)
    try:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        value = await conn.fetchval(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = $1", s.database
        )
    finally:
        await conn.close()
    return int(value or 0)


async def _check(conn: asyncpg.Connection, count: int) -> list[str]:
    problems = []
    statuses = dict(await conn.fetch("SELECT status, count(*) FROM jobs GROUP BY status"))
    if statuses != {"completed": count}:
        problems.append(f"statuses {statuses}")
    wrong = await conn.fetchval(
        "SELECT count(*) FROM (SELECT job_id, array_agg(progress ORDER BY id) AS p "
        "FROM job_events GROUP BY job_id) e WHERE p <> $1::smallint[]",
        EXPECTED_PROGRESS,
    )
    if wrong:
        problems.append(f"{wrong} jobs with events other than {EXPECTED_PROGRESS}")
    return problems


async def _drain(
    ctx: Context,
    name: str,
    count: int,
    start: Callable[[Stack, list[uuid.UUID]], Awaitable[Proc]],
) -> Drain:
    """Fill a fresh database, start the worker, queue the jobs, and time the drain."""
    async with stack(ctx.template) as s:
        ids = await _fill(s, count)
        procs = [await start(s, ids)]
        try:
            meter = CpuMeter.for_processes(
                {f"worker{i}": p.pid for i, p in enumerate(procs)},
                admin_dsn=s.backends.postgres_dsn,
                database=s.database,
                redis_url=s.redis_url,
            )
            await meter.start()
            xacts_before = await _xact_commit(s)
            conn = await s.connect()
            polls = 0
            try:
                deadline = time.monotonic() + ctx.seconds(600, 120)
                while True:
                    polls += 1
                    done = await conn.fetchval(
                        "SELECT count(*) FROM jobs WHERE status IN ('completed', 'failed')"
                    )
                    if done >= count:
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"{name}: only {done} of {count} jobs finished:\n"
                            + "".join(p.log()[-3000:] for p in procs)
                        )
                    for p in procs:
                        if not p.alive():
                            raise RuntimeError(f"{name} exited:\n{p.log()[-3000:]}")
                    await asyncio.sleep(0.05)
                used = await meter.stop()
            finally:
                await conn.close()
        finally:
            for p in procs:
                p.stop()
        # A backend reports its transactions to pg_stat_database when its connection closes
        # (an idle one may hold them back): read the counter once every connection is gone.
        await asyncio.sleep(0.5)
        xacts = await _xact_commit(s) - xacts_before - polls
        conn = await s.connect()
        try:
            span = await conn.fetchrow(
                "SELECT extract(epoch FROM max(completed_at) - min(started_at)) AS seconds, "
                "extract(epoch FROM percentile_cont(0.5) WITHIN GROUP "
                "(ORDER BY completed_at - started_at)) AS run_p50 FROM jobs"
            )
            problems = await _check(conn, count)
        finally:
            await conn.close()
    worker_cpu = sum(v for k, v in used.items() if k.startswith("worker"))
    seconds = float(span["seconds"])
    run_ms = float(span["run_p50"]) * 1000
    return Drain(count / seconds, worker_cpu / count * 1000, xacts / count, problems, run_ms)


async def _wait_ready(procs: list[Proc], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not all("ready" in p.log() for p in procs):
        for p in procs:
            if not p.alive():
                raise RuntimeError(f"{p.name} exited:\n{p.log()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not start")
        await asyncio.sleep(0.05)


async def _jobrelay_worker(s: Stack, ids: list[uuid.UUID]) -> Proc:
    proc = await s.start_worker()
    await _enqueue(s, ids, DEFER_SECONDS)
    return proc


async def _byhand_worker(s: Stack, ids: list[uuid.UUID]) -> Proc:
    args = [sys.executable, "-m", "bench.byhand_worker", s.dsn, s.redis_url]
    proc = Proc("by-hand worker", args, child_env({})).start()
    await _wait_ready([proc])
    await _enqueue(s, ids, DEFER_SECONDS)
    return proc


async def _celery_workers(s: Stack, ids: list[uuid.UUID]) -> Proc:
    """Celery has no deferred start that keeps the tasks in Redis: the tasks are queued first,
    then the worker started (the rate still runs from the first job's start)."""
    python = celery_python()
    assert python is not None
    with tempfile.NamedTemporaryFile("w", suffix=".ids") as listing:
        listing.write("\n".join(str(i) for i in ids))
        listing.flush()
        await asyncio.to_thread(
            subprocess.run,
            [python, "-m", "bench.celery_drain", "fill", s.redis_url, listing.name],
            cwd=REPO,
            env=child_env({}),
            check=True,
        )
    args = [python, "-m", "bench.celery_drain", "worker", s.dsn, s.redis_url]
    proc = Proc("celery", args, child_env({})).start()
    await _wait_ready([proc])
    return proc


def celery_python() -> str | None:
    """The interpreter of the Celery baseline: a virtualenv of its own under `.bench/` (kombu's
    Redis transport and ARQ need redis-py versions that exclude each other), made on first use
    when the `bench` extra is installed (`pip install -e '.[bench]'`); None without the extra."""
    if importlib.util.find_spec("celery") is None:
        return None
    home = REPO / ".bench" / "celery-venv"
    python = home / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(home)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *CELERY_REQUIREMENTS], check=True
        )
    return str(python)


async def run(ctx: Context) -> list[Row]:
    count = ctx.size(3000, 500)
    rounds = ctx.size(2, 1)
    results: dict[str, list[Drain]] = {"jobrelay": [], "byhand": [], "celery": []}
    for round_ in range(rounds):
        for name, start in (("jobrelay", _jobrelay_worker), ("byhand", _byhand_worker)):
            ctx.log(f"drain: {name}, {count} jobs (round {round_ + 1} of {rounds})")
            result = await _drain(ctx, name, count, start)
            ctx.log(
                f"drain: {name} {result.jobs_per_second:,.0f} jobs/s, worker CPU "
                f"{result.cpu_ms:.2f} ms/job, {result.xacts_per_job:.2f} transactions/job, run p50 "
                f"{result.run_p50_ms:.1f} ms, "
                f"problems: {result.problems or 'none'}"
            )
            results[name].append(result)
        if celery_python() is not None:
            ctx.log(f"drain: celery, {count} jobs (round {round_ + 1} of {rounds})")
            result = await _drain(ctx, "celery", count, _celery_workers)
            ctx.log(f"drain: celery {result.jobs_per_second:,.0f} jobs/s")
            results["celery"].append(result)

    def best(name: str) -> Drain | None:
        runs = results[name]
        return max(runs, key=lambda r: r.jobs_per_second) if runs else None

    ours, hand, celery = best("jobrelay"), best("byhand"), best("celery")
    assert ours is not None and hand is not None
    problems = [p for r in results["jobrelay"] for p in r.problems]
    rows = [
        Row(
            "drain",
            f"{count} queued prompt jobs, one worker, jobs/s (vs by hand)",
            ours.jobs_per_second,
            "jobs/s",
            baseline=hand.jobs_per_second,
            target=f">= {TARGET_BYHAND}x by hand",
            met=ours.jobs_per_second >= TARGET_BYHAND * hand.jobs_per_second and not problems,
            note="; ".join(problems) or f"every job completed with its 7 events; best of {rounds}",
        ),
    ]
    if celery is not None:
        rows.append(
            Row(
                "drain",
                "jobs/s (vs Celery, 2 prefork processes)",
                ours.jobs_per_second,
                "jobs/s",
                baseline=celery.jobs_per_second,
                target=f">= {TARGET_CELERY}x Celery",
                met=ours.jobs_per_second >= TARGET_CELERY * celery.jobs_per_second,
            )
        )
    else:
        rows.append(
            Row(
                "drain",
                "jobs/s (vs Celery)",
                ours.jobs_per_second,
                "jobs/s",
                note="Celery not installed: pip install -e '.[bench]'",
            )
        )
    rows += [
        Row(
            "drain",
            "worker CPU per job (vs by hand)",
            ours.cpu_ms,
            "ms",
            baseline=hand.cpu_ms,
            target=f"<= {TARGET_CPU_MS} ms",
            met=ours.cpu_ms <= TARGET_CPU_MS,
        ),
        Row(
            "drain",
            "PostgreSQL transactions per job (vs by hand)",
            ours.xacts_per_job,
            "",
            baseline=hand.xacts_per_job,
            target=f"<= {TARGET_XACTS:.0f}",
            met=ours.xacts_per_job <= TARGET_XACTS,
        ),
    ]
    return rows
