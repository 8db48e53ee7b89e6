"""Group commit for submissions: the jobs submitted while an earlier group is being written are
written together, in one statement (jobs and their `queued` events), enqueued in one Redis round
trip, and committed once.

A submission that finds nothing being written is written at once, alone, so a lone request
waits for nothing; under load the groups grow by themselves (as many as arrive during one
write). As before, the jobs are enqueued before the commit: a Redis outage fails the group
with nothing stored (each request answers 503), and a worker faster than the commit retries its
claim. A group that PostgreSQL refuses for one bad row is written again one job at a time, so
one request's error stays its own.

Submissions with an Idempotency-Key do not come here (`jobs.service` writes them one by one,
under their advisory lock, as before).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from sqlalchemy import exc as sa_exc

from jobrelay.db import batch as batch_db
from jobrelay.db.jobs import ChangedJob
from jobrelay.services import Services
from jobrelay.tx import transaction

logger = logging.getLogger(__name__)

# Groups written at once: two lets one group commit while the next is being built.
WRITERS = 2
MAX_GROUP = 500
RETRIES = 3
_RETRYABLE = {"40P01", "40001"}  # deadlock detected, serialization failure


@dataclass(eq=False)
class _Waiting:
    job: batch_db.NewJob
    future: asyncio.Future[ChangedJob]


@dataclass(eq=False)
class SubmitGroups:
    services: Services
    message: str
    _queue: list[_Waiting] = field(default_factory=list)
    _writers: int = 0
    groups: int = 0  # groups written, for tests and benchmarks

    async def submit(self, job: batch_db.NewJob) -> ChangedJob:
        future: asyncio.Future[ChangedJob] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(job, future))
        if self._writers < WRITERS:
            self._writers += 1
            asyncio.get_running_loop().create_task(self._write_while_waiting())
        return await future

    async def _write_while_waiting(self) -> None:
        try:
            while self._queue:
                group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
                try:
                    await self._write_retrying(group)
                except (sa_exc.IntegrityError, sa_exc.DataError) as exc:
                    if len(group) == 1:
                        _fail(group, exc)
                    else:
                        for one in group:
                            try:
                                await self._write([one])
                            except Exception as error:
                                _fail([one], error)
                except BaseException as exc:
                    _fail(group, exc)
                    if not isinstance(exc, Exception):
                        raise
        finally:
            self._writers -= 1

    async def _write_retrying(self, group: list[_Waiting]) -> None:
        """A group that PostgreSQL aborted to break a deadlock (or a serialization failure) is
        written again: nothing of it was stored."""
        for attempt in range(RETRIES):
            try:
                await self._write(group)
                return
            except sa_exc.DBAPIError as exc:
                code = getattr(exc.orig, "sqlstate", None) or getattr(
                    getattr(exc.orig, "__cause__", None), "sqlstate", None
                )
                if code not in _RETRYABLE or attempt == RETRIES - 1:
                    raise
                logger.warning("submit group aborted (%s), writing it again", code)

    async def _write(self, group: list[_Waiting]) -> None:
        async with transaction(self.services) as tx:
            stored = await batch_db.insert_jobs(
                tx.conn, [w.job for w in group], message=self.message
            )
            changes = [_changed(stored[w.job.id]) for w in group]
            for changed in changes:
                tx.record(changed)
            await self.services.queue.enqueue_jobs((w.job.id, w.job.kind) for w in group)
        self.groups += 1
        for waiting, changed in zip(group, changes, strict=True):
            if not waiting.future.done():
                waiting.future.set_result(changed)


def _changed(item: batch_db.StoredEvent) -> ChangedJob:
    return ChangedJob(job=item.job, event=item.event)


def _fail(group: list[_Waiting], exc: BaseException) -> None:
    for waiting in group:
        if not waiting.future.done():
            waiting.future.set_exception(exc)


def groups_of(services: Services, message: str) -> SubmitGroups:
    """The process's submit groups, made on first use."""
    groups = services.submit_groups
    if not isinstance(groups, SubmitGroups):
        groups = services.submit_groups = SubmitGroups(services, message)
    return groups


__all__ = ["SubmitGroups", "groups_of"]
