"""Periodic repair: PostgreSQL says what should be running; Redis is made to agree.

- queued jobs Redis lost (a Redis restart, a crash between commit and enqueue) are enqueued again;
- processing jobs whose worker died (lease expired) are handed to another worker;
- parked jobs get the running slots that freed up;
- jobs past their deadline fail with `timeout`;
- webhook deliveries Redis lost are enqueued again, and attempts cut short by a dead worker retried.

Housekeeping, each also run once by `jobrelay maintenance ...`:

- `purge`: finished jobs older than the retention period go, with their events, webhook
  deliveries and callbacks; questions and students stay (they are the users' data);
- `aggregate`: daily counts and run-time percentiles per kind and status into `daily_stats`,
  which `GET /v1/stats` reads for history;
- `check_generator`: the generator's `/health`, kept in `service_checks` for `/readyz`.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

import httpx

from jobrelay.db import jobs as jobs_db
from jobrelay.db import maintenance as maintenance_db
from jobrelay.db import stats as stats_db
from jobrelay.jobs import lifecycle
from jobrelay.jobs.states import JobStatus
from jobrelay.services import Services
from jobrelay.tx import transaction
from jobrelay.webhooks import delivery as webhook_delivery

logger = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    requeued: int = 0
    released: int = 0
    unparked: int = 0
    timed_out: int = 0
    webhooks_resent: int = 0


async def reconcile(services: Services, *, quiet_for_seconds: float = 5.0) -> ReconcileReport:
    report = ReconcileReport()
    async with services.engine.connect() as conn:
        stranded = await jobs_db.stranded_jobs(conn, quiet_for_seconds=quiet_for_seconds)
        parked_users = await jobs_db.users_with_parked_jobs(conn)
        overdue = await jobs_db.overdue_job_ids(conn)
    held = await services.queue.held(row.id for row in stranded)
    # A queued job a worker started in Redis but never claimed in PostgreSQL: that worker died
    # between the two, and ARQ would keep the job for its whole in-progress timeout.
    started = await services.queue.in_progress(
        row.id for row in stranded if row.status == JobStatus.QUEUED.value
    )
    for row in stranded:
        if str(row.id) not in held:
            await services.queue.enqueue_job(row.id, kind=row.kind)
            report.requeued += 1
        elif row.status == JobStatus.PROCESSING.value or str(row.id) in started:
            await services.queue.release_stale(row.id)
            report.released += 1
    for user_id in parked_users:
        async with transaction(services) as tx:
            released = await jobs_db.unpark_next(
                tx.conn, user_id=user_id, limit=services.settings.max_running_per_user
            )
            tx.enqueue.extend(released)
        report.unparked += len(released)
    report.timed_out = await _fail_all_overdue(services, overdue)
    report.webhooks_resent = await webhook_delivery.resend_lost(services)
    if any(vars(report).values()):
        logger.info("reconcile: %s", report)
    return report


async def reap(services: Services) -> int:
    """Fail every processing job past its deadline with `timeout`; how many were failed."""
    async with services.engine.connect() as conn:
        overdue = await jobs_db.overdue_job_ids(conn)
    return await _fail_all_overdue(services, overdue)


async def _fail_all_overdue(services: Services, job_ids: list[uuid.UUID]) -> int:
    failed = 0
    for job_id in job_ids:
        if await fail_overdue(services, job_id):
            failed += 1
    return failed


async def fail_overdue(services: Services, job_id: uuid.UUID) -> bool:
    async with transaction(services) as tx:
        row = await lifecycle.move(
            tx,
            job_id,
            JobStatus.FAILED,
            message="The job did not finish before its deadline.",
            values={
                "error": {
                    "code": "timeout",
                    "message": "No result arrived before the job's deadline.",
                }
            },
            where=[jobs_db.is_overdue()],
            max_running_per_user=services.settings.max_running_per_user,
        )
        if row is not None:
            tx.abort.append(row.id)
    return row is not None


PURGE_BATCH = 500
GENERATOR_CHECK_TIMEOUT = 5.0


@dataclass
class PurgeReport:
    before: dt.datetime
    jobs: int = 0
    events: int = 0
    deliveries: int = 0
    callbacks: int = 0


async def purge(
    services: Services, *, retention_days: int | None = None, batch_size: int = PURGE_BATCH
) -> PurgeReport:
    """Delete finished jobs (with their events and deliveries) and callbacks older than the
    retention period, in short batches. Days about to lose jobs are aggregated first, so
    `daily_stats` keeps their history."""
    days = retention_days or services.settings.retention_days
    await aggregate(services)
    async with services.engine.connect() as conn:
        before = await maintenance_db.cutoff(conn, days)
    report = PurgeReport(before=before)
    while True:
        async with services.engine.begin() as conn:
            batch = await maintenance_db.purge_jobs(conn, before=before, limit=batch_size)
        report.jobs += batch.jobs
        report.events += batch.events
        report.deliveries += batch.deliveries
        if batch.jobs < batch_size:
            break
    while True:
        async with services.engine.begin() as conn:
            deleted = await maintenance_db.purge_callbacks(conn, before=before, limit=batch_size)
        report.callbacks += deleted
        if deleted < batch_size:
            break
    if report.jobs or report.callbacks:
        logger.info("purge: %s", report)
    return report


@dataclass
class AggregateReport:
    first: dt.date | None = None
    last: dt.date | None = None
    rows: int = 0


async def aggregate(
    services: Services, *, redo_days: int = 2, since: dt.date | None = None
) -> AggregateReport:
    """Write `daily_stats` for every day that is over and not yet aggregated, and again for
    the last `redo_days` aggregated days, so jobs that ended after their day was first
    aggregated are counted. Idempotent. `since` rebuilds from that day (after a restore).

    A day is never re-aggregated once the purge may have removed some of its jobs: its
    stored history is then more complete than what is left in `jobs`."""
    async with services.engine.begin() as conn:
        today = await stats_db.today(conn)
        first = since
        if first is None:
            done = await maintenance_db.last_aggregated_day(conn, before=today)
            if done is None:
                first = await maintenance_db.first_job_day(conn)
            else:
                intact = today - dt.timedelta(days=services.settings.retention_days - 1)
                first = max(
                    done - dt.timedelta(days=max(1, redo_days) - 1),
                    min(done + dt.timedelta(days=1), intact),
                )
        last = today - dt.timedelta(days=1)
        if first is None or first > last:
            return AggregateReport()
        rows = await stats_db.aggregate_days(conn, first, last)
    logger.info("aggregate: %s..%s, %d rows", first, last, rows)
    return AggregateReport(first=first, last=last, rows=rows)


@dataclass(frozen=True)
class GeneratorCheck:
    url: str
    ok: bool
    detail: str


async def check_generator(services: Services) -> GeneratorCheck | None:
    """GET the generator's `/health` and keep the outcome for `/readyz`; None when no
    generator is configured."""
    base = services.settings.generator_url
    if not base:
        return None
    url = base.rstrip("/") + "/health"
    try:
        response = await services.http.get(url, timeout=GENERATOR_CHECK_TIMEOUT)
    except httpx.HTTPError as exc:
        ok, detail = False, f"{type(exc).__name__}: {exc}"[:300]
    else:
        ok = response.is_success
        detail = f"HTTP {response.status_code}"
    async with services.engine.begin() as conn:
        await maintenance_db.record_check(
            conn, name=maintenance_db.GENERATOR_CHECK, ok=ok, detail=detail
        )
    if not ok:
        logger.warning("generator health check failed: %s: %s", url, detail)
    return GeneratorCheck(url=url, ok=ok, detail=detail)
