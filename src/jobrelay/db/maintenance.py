"""SQL for housekeeping: purging old jobs, finding which days to aggregate, peer health checks.

Purge removes a bounded batch per call so no transaction holds many locks for long; the
caller loops. Questions and students outlive their jobs (`questions.job_id` is SET NULL by the
foreign key, `students.last_job_id` is a plain column), so quiz history and ingested records
stay after the jobs that produced them are gone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Date, Row, cast, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from jobrelay.db.models import callbacks_table as callbacks
from jobrelay.db.models import daily_stats_table as daily
from jobrelay.db.models import job_events_table as events
from jobrelay.db.models import jobs_table as jobs
from jobrelay.db.models import service_checks_table as checks
from jobrelay.db.models import webhook_deliveries_table as deliveries

__all__ = [
    "GENERATOR_CHECK",
    "PurgedBatch",
    "cutoff",
    "first_job_day",
    "get_check",
    "last_aggregated_day",
    "purge_callbacks",
    "purge_jobs",
    "record_check",
]

TERMINAL = ("completed", "failed", "canceled")
GENERATOR_CHECK = "generator"  # the `service_checks` row of the generator's health
CheckRow = Row[*tuple[Any, ...]]


@dataclass(frozen=True)
class PurgedBatch:
    jobs: int
    events: int
    deliveries: int


async def cutoff(conn: AsyncConnection, retention_days: int) -> dt.datetime:
    """The instant before which rows are old enough to purge, on the database's clock."""
    value: dt.datetime = (
        await conn.execute(select(func.now() - func.make_interval(0, 0, 0, retention_days)))
    ).scalar_one()
    return value


async def purge_jobs(conn: AsyncConnection, *, before: dt.datetime, limit: int) -> PurgedBatch:
    """Delete up to `limit` finished jobs that ended before `before`, with their events and
    webhook deliveries. Queued and processing jobs are never purged, however old."""
    batch = (
        select(jobs.c.id)
        .where(
            jobs.c.status.in_(TERMINAL),
            func.coalesce(jobs.c.completed_at, jobs.c.created_at) < before,
        )
        .order_by(jobs.c.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    job_ids = list((await conn.execute(batch)).scalars())
    if not job_ids:
        return PurgedBatch(0, 0, 0)
    purged_events = await conn.execute(delete(events).where(events.c.job_id.in_(job_ids)))
    purged_deliveries = await conn.execute(
        delete(deliveries).where(deliveries.c.job_id.in_(job_ids))
    )
    purged_jobs = await conn.execute(delete(jobs).where(jobs.c.id.in_(job_ids)))
    return PurgedBatch(
        jobs=int(purged_jobs.rowcount),
        events=int(purged_events.rowcount),
        deliveries=int(purged_deliveries.rowcount),
    )


async def purge_callbacks(conn: AsyncConnection, *, before: dt.datetime, limit: int) -> int:
    """Delete up to `limit` audited callbacks received before `before`."""
    batch = (
        select(callbacks.c.id)
        .where(callbacks.c.received_at < before)
        .order_by(callbacks.c.id)
        .limit(limit)
        .scalar_subquery()
    )
    result = await conn.execute(delete(callbacks).where(callbacks.c.id.in_(batch)))
    return int(result.rowcount)


def _utc_day(column: Any) -> Any:
    return cast(func.timezone("UTC", column), Date)


async def last_aggregated_day(conn: AsyncConnection, *, before: dt.date) -> dt.date | None:
    """The newest day before `before` that `daily_stats` has rows for."""
    stmt = select(func.max(daily.c.day)).where(daily.c.day < before)
    found: dt.date | None = (await conn.execute(stmt)).scalar_one_or_none()
    return found


async def first_job_day(conn: AsyncConnection) -> dt.date | None:
    """The UTC day the oldest stored job was created (an index scan on `created_at`)."""
    stmt = select(_utc_day(func.min(jobs.c.created_at)))
    found: dt.date | None = (await conn.execute(stmt)).scalar_one_or_none()
    return found


async def record_check(conn: AsyncConnection, *, name: str, ok: bool, detail: str) -> None:
    """Keep the latest outcome of a peer's health check (one row per peer)."""
    stmt = insert(checks).values(name=name, ok=ok, detail=detail, checked_at=func.now())
    stmt = stmt.on_conflict_do_update(
        index_elements=[checks.c.name],
        set_={"ok": stmt.excluded.ok, "detail": stmt.excluded.detail, "checked_at": func.now()},
    )
    await conn.execute(stmt)


async def get_check(conn: AsyncConnection, name: str) -> CheckRow | None:
    """The latest check of `name`, with `age_seconds` since it ran (database clock)."""
    stmt = select(
        *checks.c, func.extract("epoch", func.now() - checks.c.checked_at).label("age_seconds")
    ).where(checks.c.name == name)
    return (await conn.execute(stmt)).first()
