"""Statistics for `GET /v1/stats`: exact counts without counting a million rows.

Admins get every job: history from `daily_stats` plus live counts of what it does not cover
(active jobs, and terminal jobs created since the last aggregated day). Users get their own
jobs, counted live through the `(user_id, created_at)` index.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from jobrelay.db import stats as stats_db
from jobrelay.jobs.states import JobStatus
from jobrelay.kinds import KINDS, load_kinds
from jobrelay.services import Services
from jobrelay.stats.schemas import DailyStat, Durations, StatsOut
from jobrelay.users.service import Caller

DURATION_SAMPLE = 1000
STATUSES = tuple(status.value for status in JobStatus)


def _table(rows: Iterable[Any], kinds: Iterable[str]) -> dict[str, dict[str, int]]:
    table = {kind: dict.fromkeys(STATUSES, 0) for kind in kinds}
    for row in rows:
        per_kind = table.setdefault(row.kind, dict.fromkeys(STATUSES, 0))
        per_kind[row.status] = per_kind.get(row.status, 0) + int(row.count)
    return table


def _durations(row: dict[str, Any] | None) -> Durations:
    if row is None:
        return Durations(p50=None, p95=None, samples=0)
    return Durations(
        p50=None if row["p50"] is None else round(float(row["p50"]), 3),
        p95=None if row["p95"] is None else round(float(row["p95"]), 3),
        samples=row["samples"],
    )


def _queue_depths(jobs: dict[str, dict[str, int]]) -> dict[str, int]:
    """Queued jobs per queue, every queue a kind uses listed (0 when none wait)."""
    kinds = load_kinds()
    depths = dict.fromkeys(kinds.queues(), 0)
    for kind, per_status in jobs.items():
        queue = kinds.queue_of(kind)
        depths[queue] = depths.get(queue, 0) + per_status.get(JobStatus.QUEUED.value, 0)
    return dict(sorted(depths.items()))


async def get_stats(services: Services, caller: Caller, *, days: int = 0) -> StatsOut:
    user_id = None if caller.is_admin else caller.id
    async with services.engine.connect() as conn:
        today = await stats_db.today(conn)
        rows: list[Any] = []
        if user_id is None:
            first_live = await stats_db.first_live_day(conn, today)
            if first_live is not None:
                rows += await stats_db.history_counts(conn, first_live)
            rows += await stats_db.count_by_kind_status(
                conn, statuses=stats_db.TERMINAL, created_since=first_live
            )
            rows += await stats_db.count_by_kind_status(conn, statuses=stats_db.ACTIVE)
        else:
            rows += await stats_db.count_by_kind_status(conn, statuses=STATUSES, user_id=user_id)
        jobs = _table(rows, KINDS)
        durations = await stats_db.recent_durations(
            conn, sorted(jobs), sample=DURATION_SAMPLE, user_id=user_id
        )
        history: list[Any] = []
        if days and user_id is None:
            history = list(
                await stats_db.history_rows(
                    conn, since=today - dt.timedelta(days=days), until=today
                )
            )
    by_status = {status: sum(per_kind[status] for per_kind in jobs.values()) for status in STATUSES}
    by_kind = {row["kind"]: row for row in durations if row["kind"] is not None}
    overall = next((row for row in durations if row["kind"] is None), None)
    return StatsOut(
        scope="all" if user_id is None else "own",
        jobs=jobs,
        by_status=by_status,
        total=sum(by_status.values()),
        durations={kind: _durations(by_kind.get(kind)) for kind in jobs},
        overall=_durations(overall),
        queue_depth=by_status[JobStatus.QUEUED.value],
        queues=_queue_depths(jobs),
        running=by_status[JobStatus.PROCESSING.value],
        generated_at=dt.datetime.now(dt.UTC),
        history=[DailyStat.model_validate(row, from_attributes=True) for row in history],
    )
