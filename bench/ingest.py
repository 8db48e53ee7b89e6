"""`records.ingest` (issue 4, point 8): `python -m bench.ingest [--quick]`, or within `python -m bench`.

1. Write strategies. 1000 student rows written as the job writes them (10 batches of 100, one
   transaction each) by three upserts on `student_id`: one `INSERT … SELECT FROM unnest(…)`
   (what jobrelay ships), asyncpg `executemany`, and COPY into a temporary table followed by
   `INSERT … SELECT … ON CONFLICT`; fresh rows, then the same rows again (nothing changes).
   Baseline: asyncpg `copy_records_to_table` of the same 1000 rows into a scratch table shaped
   like `students`, in one call: the physical limit of getting rows into PostgreSQL here.
2. One 1000-record job inside the worker with the enrichment delay at 0: claim, validation,
   ten batches each committed with its progress event, completion. Run in this process through
   the worker's own runner (no queue wait), interleaved with the raw COPY of the same rows, so
   the ratio of the two rates holds up on a busy machine. All of the job's time is overhead.
3. With the default 0.5 s enrichment delay, through the real API and one worker process:
   one job alone, then ten submitted at once by ten users (the per-user running limit of 5
   stays on). Times are PostgreSQL's, from the first submit to the last completion. Meanwhile
   a client reads a job over the API every 20 ms: its latency against the same read when idle.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/ingest.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import httpx
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

from bench.context import Context
from bench.report import Row
from bench.stack import Stack, stack
from jobrelay.db import jobs as jobs_db
from jobrelay.db import students as students_db
from jobrelay.db.students import DATA_COLUMNS, StudentRow
from jobrelay.ingestion.tasks import RUNNER
from jobrelay.jobs import service as jobs_service
from jobrelay.jobs.schemas import JobCreate
from jobrelay.runtime import runner
from jobrelay.services import Services
from jobrelay.users.service import Caller

RECORDS = 1000
BATCH = 100
OVERHEAD_TARGET_MS = 100.0
COPY_SHARE_TARGET = 1 / 3
CONCURRENCY_TARGET = 1.3
CONCURRENT_JOBS = 10
DELAY = 0.5

COLUMNS = ", ".join([*DATA_COLUMNS, "last_job_id"])
UPSERT_TAIL = (
    "ON CONFLICT (student_id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in [*DATA_COLUMNS[1:], "last_job_id"])
    + ", updated_at = now() WHERE ("
    + ", ".join(f"students.{name}" for name in DATA_COLUMNS[1:])
    + ") IS DISTINCT FROM ("
    + ", ".join(f"excluded.{name}" for name in DATA_COLUMNS[1:])
    + ")"
)
EXECUTEMANY_SQL = (
    f"INSERT INTO students ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) {UPSERT_TAIL}"
)
STAGE_TABLE = (
    "CREATE TEMP TABLE IF NOT EXISTS students_stage "
    "(LIKE students INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
FROM_STAGE_SQL = (
    f"INSERT INTO students ({COLUMNS}) SELECT {COLUMNS} FROM students_stage {UPSERT_TAIL}"
)
SCRATCH = "students_copy_scratch"
UNNEST = "INSERT … SELECT FROM unnest (one statement)"
SHIPPED = "the same, as shipped (SQLAlchemy Core)"


def records(prefix: str, count: int = RECORDS) -> list[dict[str, Any]]:
    """Valid records, the shape a school system sends: about 200 bytes each."""
    born = dt.date(2008, 1, 1)
    return [
        {
            "student_id": f"{prefix}-{n:06d}",
            "first_name": f"First{n}",
            "last_name": f"Last{n}",
            "email": f"student{n}.{prefix.lower()}@school.example.com",
            "grade": 1 + n % 12,
            "date_of_birth": (born + dt.timedelta(days=n % 3000)).isoformat(),
            "school_id": f"SCH-{n % 40:03d}",
        }
        for n in range(count)
    ]


def rows_of(items: list[dict[str, Any]]) -> list[StudentRow]:
    return [
        StudentRow(
            r["student_id"],
            r["first_name"],
            r["last_name"],
            r["email"],
            r["grade"],
            dt.date.fromisoformat(r["date_of_birth"]),
            r["school_id"],
        )
        for r in items
    ]


def prefix() -> str:
    return f"B{uuid.uuid4().hex[:10]}"


def ms(seconds: float) -> float:
    return seconds * 1000


def median(values: list[float]) -> float:
    return statistics.median(values)


async def timed(action: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


async def raw_copy(conn: asyncpg.Connection, rows: list[StudentRow]) -> float:
    """COPY of `rows` into the empty scratch table; seconds."""
    await conn.execute(f"TRUNCATE {SCRATCH}")
    return await timed(
        lambda: conn.copy_records_to_table(SCRATCH, records=rows, columns=list(DATA_COLUMNS))
    )


# 1. Write strategies ----------------------------------------------------------------------------

Writer = Callable[[list[StudentRow], uuid.UUID], Awaitable[None]]


def _batches(rows: list[StudentRow]) -> list[list[StudentRow]]:
    return [rows[start : start + BATCH] for start in range(0, len(rows), BATCH)]


def _unnest_sql() -> tuple[str, list[str]]:
    """The shipped statement as asyncpg takes it: SQL with $n and the parameters' order."""
    compiled = students_db.UPSERT.compile(dialect=asyncpg_dialect.dialect())
    return str(compiled), list(compiled.positiontup or [])


def writers(services: Services, conn: asyncpg.Connection) -> dict[str, Writer]:
    """Each writes 1000 rows in batches of 100, one transaction per batch whose commit does not
    wait for the disk (as the job's batches do), so the statements are what is compared. The
    three statement shapes run on one raw asyncpg connection; the shipped function (through
    SQLAlchemy Core) is measured too."""
    unnest_sql, order = _unnest_sql()

    async def unnest(rows: list[StudentRow], job_id: uuid.UUID) -> None:
        for batch in _batches(rows):
            columns = {name: [row[i] for row in batch] for i, name in enumerate(DATA_COLUMNS)}
            params = {**columns, "job_id": job_id}
            async with conn.transaction():
                await conn.execute("SET LOCAL synchronous_commit = off")
                await conn.fetchrow(unnest_sql, *(params[name] for name in order))

    async def executemany(rows: list[StudentRow], job_id: uuid.UUID) -> None:
        for batch in _batches(rows):
            async with conn.transaction():
                await conn.execute("SET LOCAL synchronous_commit = off")
                await conn.executemany(EXECUTEMANY_SQL, [(*row, job_id) for row in batch])

    async def copy_then_upsert(rows: list[StudentRow], job_id: uuid.UUID) -> None:
        for batch in _batches(rows):
            async with conn.transaction():
                await conn.execute("SET LOCAL synchronous_commit = off")
                await conn.execute(STAGE_TABLE)
                await conn.copy_records_to_table(
                    "students_stage",
                    records=[(*row, job_id) for row in batch],
                    columns=[*DATA_COLUMNS, "last_job_id"],
                )
                await conn.execute(FROM_STAGE_SQL)

    async def shipped(rows: list[StudentRow], job_id: uuid.UUID) -> None:
        for batch in _batches(rows):
            async with services.engine.begin() as sa_conn:
                await students_db.upsert_students(sa_conn, batch, job_id=job_id, defer_flush=True)

    return {
        UNNEST: unnest,
        "executemany": executemany,
        "COPY to temp table + INSERT … ON CONFLICT": copy_then_upsert,
        SHIPPED: shipped,
    }


async def write_strategies(ctx: Context, s: Stack, services: Services) -> list[Row]:
    reps = ctx.size(15, 4)
    conn = await s.connect()
    try:
        await conn.execute(f"CREATE TABLE {SCRATCH} (LIKE students INCLUDING ALL)")
        strategies = writers(services, conn)
        fresh: dict[str, list[float]] = {name: [] for name in strategies}
        again: dict[str, list[float]] = {name: [] for name in strategies}
        copies: list[float] = []
        for rep in range(reps + 1):
            for name, write in strategies.items():
                rows = rows_of(records(prefix()))
                job_id = uuid.uuid4()
                first = await timed(lambda: write(rows, job_id))  # noqa: B023
                second = await timed(lambda: write(rows, job_id))  # noqa: B023
                copy = await raw_copy(conn, rows)
                if rep:  # the first round warms up connections and prepared statements
                    fresh[name].append(first)
                    again[name].append(second)
                    copies.append(copy)
    finally:
        await conn.close()
    baseline = ms(median(copies))
    shapes = [name for name in strategies if name != SHIPPED]
    fastest = min(shapes, key=lambda name: median(fresh[name]))
    ctx.log(f"ingest: fastest statement shape: {fastest}")
    result = []
    for name in strategies:
        result.append(
            Row(
                "ingest",
                f"write 1000 new rows, 10x100: {name}",
                ms(median(fresh[name])),
                "ms",
                baseline=baseline,
                note="the fastest shape; baseline: one raw COPY of the same 1000 rows"
                if name == fastest
                else "",
            )
        )
        result.append(
            Row(
                "ingest",
                f"write the same 1000 rows again: {name}",
                ms(median(again[name])),
                "ms",
                baseline=baseline,
            )
        )
    return result


# 2. One job inside the worker, delay 0 --------------------------------------------------------


@dataclass
class JobTimes:
    run: list[float]
    body: list[float]
    again: list[float]
    copy: list[float]


async def _submit(services: Services, caller: Caller, items: list[dict[str, Any]]) -> uuid.UUID:
    body = JobCreate.model_validate({"kind": "records.ingest", "input": {"records": items}})
    submitted = await jobs_service.submit(services, caller, body, idempotency_key=None)
    return uuid.UUID(str(submitted.job.id))


async def _run(services: Services, job_id: uuid.UUID) -> tuple[float, float]:
    """(claim-to-completion seconds, the body's own `duration`)."""
    registry = {"records.ingest": RUNNER}
    seconds = await timed(lambda: runner.run(services, registry, job_id, delivery=1))
    async with services.engine.connect() as conn:
        job = await jobs_db.get_job(conn, job_id)
    assert job is not None and job.status == "completed", job
    assert job.result["processed_records"] == RECORDS, job.result
    return seconds, float(job.result["duration"])


async def job_in_worker(ctx: Context, s: Stack, services: Services) -> list[Row]:
    reps = ctx.size(20, 5)
    assert s.admin is not None
    caller = Caller(id=s.admin.id, name="bench-admin", role="admin")
    conn = await s.connect()
    times = JobTimes([], [], [], [])
    try:
        for rep in range(reps + 2):
            items = records(prefix())
            first = await _submit(services, caller, items)
            second = await _submit(services, caller, items)
            run, body = await _run(services, first)
            again, _ = await _run(services, second)
            copy = await raw_copy(conn, rows_of(items))
            if rep >= 2:  # two warm-up rounds
                times.run.append(run)
                times.body.append(body)
                times.again.append(again)
                times.copy.append(copy)
    finally:
        await conn.close()
    run_ms, copy_ms = ms(median(times.run)), ms(median(times.copy))
    shares = [copy / run for copy, run in zip(times.copy, times.run, strict=True)]
    share = median(shares)
    return [
        Row(
            "ingest",
            "1000-record job in the worker, delay 0 (claim to completed)",
            run_ms,
            "ms",
            target=f"< {OVERHEAD_TARGET_MS:.0f} ms",
            met=run_ms < OVERHEAD_TARGET_MS,
            note=f"the body alone (validate, 10 batches with their events): "
            f"{ms(median(times.body)):.1f} ms; p90 of the whole job "
            f"{ms(statistics.quantiles(times.run, n=10)[-1]):.1f} ms over {reps} runs",
        ),
        Row(
            "ingest",
            "records/s of one job vs raw COPY of the same rows",
            RECORDS / median(times.run),
            "rec/s",
            baseline=RECORDS / median(times.copy),
            target=f"≥ {COPY_SHARE_TARGET:.0%} of COPY",
            met=share >= COPY_SHARE_TARGET,
            note=f"raw COPY of 1000 rows: {copy_ms:.1f} ms; median of per-run ratios {share:.0%}",
        ),
        Row(
            "ingest",
            "the same 1000 records again (nothing changes), delay 0",
            ms(median(times.again)),
            "ms",
            baseline=run_ms,
        ),
    ]


# 3. Ten jobs at once, delay 0.5 s -------------------------------------------------------------


async def _span(conn: asyncpg.Connection, job_ids: list[str]) -> float:
    """Seconds from the first job's creation to the last one's completion, by PostgreSQL."""
    row = await conn.fetchrow(
        "SELECT max(completed_at) - min(created_at) AS span, "
        "count(*) FILTER (WHERE status = 'completed') AS completed "
        "FROM jobs WHERE id = ANY($1::uuid[])",
        job_ids,
    )
    assert row is not None and row["completed"] == len(job_ids), row
    span: dt.timedelta = row["span"]
    return span.total_seconds()


async def _wait_all(conn: asyncpg.Connection, job_ids: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        done = await conn.fetchval(
            "SELECT count(*) FROM jobs WHERE id = ANY($1::uuid[]) "
            "AND status IN ('completed', 'failed', 'canceled')",
            job_ids,
        )
        if done == len(job_ids):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{done} of {len(job_ids)} ingestion jobs finished in {timeout} s")
        await asyncio.sleep(0.05)


async def _submit_http(client: httpx.AsyncClient, key: str, items: list[dict[str, Any]]) -> str:
    response = await client.post(
        "/v1/jobs",
        json={"kind": "records.ingest", "input": {"records": items}},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


class Probe:
    """Reads one job over the API every 20 ms, recording each request's latency."""

    def __init__(self, client: httpx.AsyncClient, key: str, job_id: str) -> None:
        self.client, self.key, self.job_id = client, key, job_id
        self.latencies: list[float] = []
        self.task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            started = time.perf_counter()
            response = await self.client.get(
                f"/v1/jobs/{self.job_id}", headers={"Authorization": f"Bearer {self.key}"}
            )
            assert response.status_code == 200
            self.latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)

    def start(self) -> None:
        self.task = asyncio.create_task(self._loop())

    async def stop(self) -> list[float]:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        return self.latencies


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else values[0]


async def concurrent_jobs(ctx: Context) -> list[Row]:
    rounds = ctx.size(2, 1)
    env = {"JOBRELAY_INGEST_DELAY_PER_100": str(DELAY)}
    async with stack(ctx.template, env) as s:
        api = s.start_api()
        await s.start_worker()
        users = await s.make_users(CONCURRENT_JOBS)
        conn = await s.connect()
        alone: list[float] = []
        together: list[float] = []
        idle_latency: list[float] = []
        busy_latency: list[float] = []
        try:
            async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
                warm = await _submit_http(client, users[0].key, records(prefix(), 100))
                await _wait_all(conn, [warm])
                for _ in range(rounds):
                    probe = Probe(client, users[0].key, warm)
                    probe.start()
                    await asyncio.sleep(1.0)
                    idle_latency += await probe.stop()

                    ctx.log("ingest: one 1000-record job alone, delay 0.5 s")
                    one = [await _submit_http(client, users[0].key, records(prefix()))]
                    await _wait_all(conn, one)
                    alone.append(await _span(conn, one))

                    ctx.log(f"ingest: {CONCURRENT_JOBS} jobs at once, delay 0.5 s")
                    batches = [records(prefix()) for _ in users]
                    probe = Probe(client, users[0].key, warm)
                    probe.start()
                    ten = await asyncio.gather(
                        *(
                            _submit_http(client, user.key, items)
                            for user, items in zip(users, batches, strict=True)
                        )
                    )
                    await _wait_all(conn, list(ten))
                    busy_latency += await probe.stop()
                    together.append(await _span(conn, list(ten)))
        finally:
            await conn.close()
    one_s, ten_s = median(alone), median(together)
    return [
        Row(
            "ingest",
            f"{CONCURRENT_JOBS} jobs of 1000 at once vs one alone, delay {DELAY} s",
            ten_s,
            "s",
            baseline=one_s,
            target=f"≤ {CONCURRENCY_TARGET:.0%} of one",
            met=ten_s <= CONCURRENCY_TARGET * one_s,
            note=f"first submit to last completion; one worker process; {rounds} round(s); "
            f"the original design took about 7 s for one job",
        ),
        Row(
            "ingest",
            f"API GET /v1/jobs/{{id}} p95 while {CONCURRENT_JOBS} jobs run",
            ms(p95(busy_latency)),
            "ms",
            baseline=ms(p95(idle_latency)),
            note=f"{len(busy_latency)} reads during the jobs; baseline: the same reads while idle",
        ),
    ]


# Entry points ---------------------------------------------------------------------------------


async def run(ctx: Context) -> list[Row]:
    rows: list[Row] = []
    async with stack(ctx.template, {"JOBRELAY_INGEST_DELAY_PER_100": "0"}) as s:
        services = await Services.open(s.settings, pool_size=4)
        try:
            ctx.log("ingest: write strategies")
            rows += await write_strategies(ctx, s, services)
            ctx.log("ingest: one job in the worker, delay 0")
            rows += await job_in_worker(ctx, s, services)
        finally:
            await services.close()
    rows += await concurrent_jobs(ctx)
    return rows


async def main(argv: list[str]) -> int:
    from bench.environment import Backends
    from bench.report import Report, render
    from bench.stack import Template

    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args(argv)
    backends = Backends.find()
    template = Template(backends)
    ctx = Context(backends, template, quick=args.quick)
    report = Report()
    try:
        report.add(await run(ctx))
    finally:
        await template.drop()
        backends.stop()
    print(render(report))
    return 1 if report.missed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
