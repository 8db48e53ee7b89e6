"""SQL for statistics, written to stay fast with millions of jobs.

`daily_stats` holds history: one row per (day, kind, status) for the jobs *created* on that UTC
day that were in that *terminal* status (completed, failed, canceled) when the day was
aggregated, with the p50 and p95 of their run time (`completed_at - started_at`, seconds).
`aggregate_days` writes it; the daily cron calls it for days that are over, and again for the
last day or two so that jobs which ended after their day was first aggregated are counted.

Live figures come from `jobs` through its indexes: queued and processing jobs of any day (few),
terminal jobs created since the last aggregated day (one day's worth), and durations from the
most recent completed jobs of each kind (a bounded sample).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    Integer,
    Row,
    String,
    bindparam,
    cast,
    delete,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from jobrelay.db.models import daily_stats_table as daily
from jobrelay.db.models import jobs_table as jobs

StatRow = Row[*tuple[Any, ...]]
ACTIVE = ("queued", "processing")
TERMINAL = ("completed", "failed", "canceled")

__all__ = [
    "ACTIVE",
    "TERMINAL",
    "aggregate_days",
    "count_by_kind_status",
    "first_live_day",
    "history_counts",
    "history_rows",
    "queued_count",
    "recent_durations",
    "today",
]


def _utc_day(column: Any) -> Any:
    return cast(func.timezone("UTC", column), Date)


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _run_seconds() -> Any:
    return func.extract("epoch", jobs.c.completed_at - jobs.c.started_at)


async def today(conn: AsyncConnection) -> dt.date:
    """The database's current UTC date: one clock for every process."""
    value: dt.date = (await conn.execute(select(_utc_day(func.now())))).scalar_one()
    return value


async def first_live_day(conn: AsyncConnection, today: dt.date) -> dt.date | None:
    """The first day not covered by `daily_stats` (never later than today); None if it is empty.

    Days from this one on are counted from `jobs` directly.
    """
    stmt = select(func.max(daily.c.day)).where(daily.c.day < today)
    last: dt.date | None = (await conn.execute(stmt)).scalar_one_or_none()
    return None if last is None else last + dt.timedelta(days=1)


async def history_counts(conn: AsyncConnection, before: dt.date) -> Sequence[StatRow]:
    """(kind, status, count) of terminal jobs created before `before`, from `daily_stats`."""
    stmt = (
        select(daily.c.kind, daily.c.status, func.sum(daily.c.count).label("count"))
        .where(daily.c.day < before, daily.c.status.in_(TERMINAL))
        .group_by(daily.c.kind, daily.c.status)
    )
    return (await conn.execute(stmt)).all()


async def count_by_kind_status(
    conn: AsyncConnection,
    *,
    statuses: Sequence[str],
    created_since: dt.date | None = None,
    user_id: int | None = None,
) -> Sequence[StatRow]:
    """(kind, status, count) of jobs in `statuses`, optionally created since a day, or one user's."""
    stmt = (
        select(jobs.c.kind, jobs.c.status, func.count().label("count"))
        .where(jobs.c.status.in_(statuses))
        .group_by(jobs.c.kind, jobs.c.status)
    )
    if created_since is not None:
        stmt = stmt.where(jobs.c.created_at >= _day_start(created_since))
    if user_id is not None:
        stmt = stmt.where(jobs.c.user_id == user_id)
    return (await conn.execute(stmt)).all()


async def queued_count(conn: AsyncConnection, *, user_id: int | None = None) -> int:
    stmt = select(func.count()).where(jobs.c.status == "queued")
    if user_id is not None:
        stmt = stmt.where(jobs.c.user_id == user_id)
    return int((await conn.execute(stmt)).scalar_one())


_RECENT_DURATIONS = """
SELECT latest.kind,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latest.seconds) AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latest.seconds) AS p95,
       count(*) AS samples
FROM unnest(:kinds) AS wanted(kind)
CROSS JOIN LATERAL (
    SELECT j.kind, extract(epoch FROM j.completed_at - j.started_at)::float8 AS seconds
    FROM jobs AS j
    WHERE j.kind = wanted.kind AND j.status = 'completed'
      AND j.started_at IS NOT NULL AND j.completed_at IS NOT NULL
      AND (CAST(:user_id AS bigint) IS NULL OR j.user_id = :user_id)
    ORDER BY j.created_at DESC
    LIMIT :sample
) AS latest
GROUP BY GROUPING SETS ((latest.kind), ())
"""


async def recent_durations(
    conn: AsyncConnection, kinds: Sequence[str], *, sample: int, user_id: int | None = None
) -> list[dict[str, Any]]:
    """p50/p95 run time of the latest `sample` completed jobs of each kind, and of all of them.

    One index range scan per kind (`kind, status, created_at DESC`), however big the table is.
    Rows: {"kind": the kind, or None for all kinds together, "p50", "p95", "samples"}.
    """
    if not kinds:
        return []
    stmt = text(_RECENT_DURATIONS).bindparams(
        bindparam("kinds", type_=ARRAY(String)),
        bindparam("user_id", type_=BigInteger),
        bindparam("sample", type_=Integer),
    )
    params = {"kinds": list(kinds), "user_id": user_id, "sample": sample}
    return [
        {"kind": r.kind, "p50": r.p50, "p95": r.p95, "samples": int(r.samples)}
        for r in (await conn.execute(stmt, params)).all()
    ]


async def history_rows(
    conn: AsyncConnection, *, since: dt.date, until: dt.date
) -> Sequence[StatRow]:
    stmt = (
        select(*daily.c)
        .where(daily.c.day >= since, daily.c.day <= until)
        .order_by(daily.c.day, daily.c.kind, daily.c.status)
    )
    return (await conn.execute(stmt)).all()


async def aggregate_days(conn: AsyncConnection, first: dt.date, last: dt.date) -> int:
    """(Re)write `daily_stats` for the days `first`..`last` (UTC) from `jobs`; rows written.

    Idempotent: rows of those days are replaced, so rerunning a day after late finishes fixes it.
    """
    start, end = _day_start(first), _day_start(last + dt.timedelta(days=1))
    await conn.execute(delete(daily).where(daily.c.day >= first, daily.c.day <= last))
    seconds = _run_seconds()
    day = _utc_day(jobs.c.created_at).label("day")
    source = (
        select(
            day,
            jobs.c.kind,
            jobs.c.status,
            func.count().label("count"),
            func.percentile_cont(0.5).within_group(seconds).label("p50_seconds"),
            func.percentile_cont(0.95).within_group(seconds).label("p95_seconds"),
        )
        .where(
            jobs.c.created_at >= start,
            jobs.c.created_at < end,
            jobs.c.status.in_(TERMINAL),
        )
        .group_by(day, jobs.c.kind, jobs.c.status)
    )
    stmt = insert(daily).from_select(
        ["day", "kind", "status", "count", "p50_seconds", "p95_seconds"], source
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[daily.c.day, daily.c.kind, daily.c.status],
        set_={
            "count": stmt.excluded.count,
            "p50_seconds": stmt.excluded.p50_seconds,
            "p95_seconds": stmt.excluded.p95_seconds,
            "updated_at": func.now(),
        },
    )
    return int((await conn.execute(stmt)).rowcount)
