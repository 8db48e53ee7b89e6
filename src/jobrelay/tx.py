"""A transaction with after-commit work: events are published and jobs enqueued only once the
rows they describe are committed, so no listener or worker sees a job that is not there."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncConnection

from jobrelay import broadcast
from jobrelay.db.jobs import ChangedJob, JobRow
from jobrelay.services import Services
from jobrelay.stats import counters

logger = logging.getLogger(__name__)
AfterCommit = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Task:
    """A helper task (by ARQ function name) to enqueue once the rows it reads are committed."""

    function: str
    args: tuple[Any, ...]
    task_id: str | None = None
    defer_seconds: float = 0


@dataclass
class Tx:
    conn: AsyncConnection
    events: list[dict[str, Any]] = field(default_factory=list)
    enqueue: list[tuple[uuid.UUID, str]] = field(default_factory=list)  # (job id, kind)
    abort: list[uuid.UUID] = field(default_factory=list)
    after: list[AfterCommit] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    changes: list[ChangedJob] = field(default_factory=list)

    def record(self, changed: ChangedJob) -> JobRow:
        """Keep the change's event for publishing after commit; hand back the job row."""
        self.events.append(changed.event)
        self.changes.append(changed)
        return changed.job


@asynccontextmanager
async def transaction(services: Services) -> AsyncIterator[Tx]:
    async with services.engine.begin() as conn:
        tx = Tx(conn)
        yield tx
    await after_commit(services, tx)


async def after_commit(
    services: Services, tx: Tx, *, before: Sequence[broadcast.Command] = ()
) -> BaseException | None:
    """Publish, enqueue and count what a committed transaction recorded; the commands `before`
    go first in the publishing pipeline, whose Redis error (if any) is returned."""
    failed = await broadcast.publish(services.redis, tx.events, before=before)
    try:
        for job_id in tx.abort:
            await services.queue.abort(job_id)
        for job_id, kind in tx.enqueue:
            await services.queue.enqueue_job(job_id, kind=kind)
        for task in tx.tasks:
            await services.queue.enqueue_task(
                task.function, *task.args, task_id=task.task_id, defer_seconds=task.defer_seconds
            )
    except (RedisError, OSError) as exc:
        logger.warning("queue unavailable after commit, the reconciler will catch up: %s", exc)
    await counters.count_job_changes(services.redis, tx.changes)
    for hook in tx.after:
        await hook()
    return failed
