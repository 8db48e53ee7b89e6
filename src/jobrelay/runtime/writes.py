"""The worker's write buffer: collect for a few milliseconds, write once, hand each caller its
outcome.

Claims, progress steps and endings (completed with the token charge, or failed) of every job
running in the process are gathered for at most `write_buffer_ms` (or until `write_buffer_max`
operations wait) and written in one transaction of set-based statements (`jobrelay.db.batch`),
with the webhook outbox rows and unparked jobs they call for. The events are then published in
one Redis pipeline and the counters bumped, in the order they were stored. Live output rides in
the same pipeline, ahead of the events (`redis`): it needs no transaction, and a job's text thus
reaches listeners before the event that ends it.

Guarantees:
- Flushes run one after another, and within a flush steps are stored before endings: a job's
  writes reach PostgreSQL and the stream in the order the job made them.
- Each row keeps its attempt fence: a stale attempt's writes are dropped (its caller gets
  `JobGone`) while the rest of the flush commits.
- A caller that must know its write committed (a claim, an ending) awaits it; a progress step
  does not, and learns of a dropped step at its next call (`StepsOp.future`).
- A flush that fails is retried whole (it was rolled back, so nothing is written twice) until
  `write_retry_seconds` pass, then its operations fail with the error and their jobs handle it
  as they handle a database error. If the connection drops during COMMIT itself, the flush's
  transaction id tells whether it committed: if it did, its operations are done (nothing is
  written again), if not, it is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from sqlalchemy import exc as sa_exc

from jobrelay import broadcast
from jobrelay.broadcast import Command
from jobrelay.db import batch as batch_db
from jobrelay.db.jobs import ChangedJob, JobRow
from jobrelay.runtime.errors import JobGone, insufficient_tokens
from jobrelay.services import Services
from jobrelay.tx import Tx, after_commit
from jobrelay.webhooks import outbox

logger = logging.getLogger(__name__)

# Errors of the statements themselves (a bug, not an outage): retrying cannot help.
_NOT_RETRYABLE = (sa_exc.ProgrammingError, sa_exc.DataError, sa_exc.IntegrityError, TypeError)


class ClaimOutcome(Enum):
    CLAIMED = "claimed"
    MISSING = "missing"  # no such row (yet)
    UNKNOWN_KIND = "unknown_kind"  # a kind this worker does not run
    NOT_CLAIMABLE = "not_claimable"  # terminal, canceled, or running under a live lease
    PARKED = "parked"  # the owner's running slots are full
    EXHAUSTED = "exhausted"  # an expired lease and no attempt left: the slow path fails it
    UNKNOWN = "unknown"  # committed, but the connection dropped before the answer came back


@dataclass(frozen=True)
class ClaimResult:
    outcome: ClaimOutcome
    job: JobRow | None = None
    owner_tokens: int | None = None
    owner_subscription_expires_at: Any = None


class EndOutcome(Enum):
    ENDED = "ended"  # stored as asked
    INSUFFICIENT_TOKENS = "insufficient_tokens"  # completion refused: failed instead
    GONE = "gone"  # fenced: canceled or taken over meanwhile
    UNKNOWN = "unknown"  # committed, but the answer was lost with the connection


@dataclass(frozen=True)
class EndResult:
    outcome: EndOutcome
    job: JobRow | None = None


@dataclass(eq=False)
class _Op:
    future: asyncio.Future[Any]


@dataclass(eq=False)
class ClaimOp(_Op):
    job_id: uuid.UUID
    starts: str  # JSON {kind: [start progress, start message]}


@dataclass(eq=False)
class StepsOp(_Op):
    job_id: uuid.UUID
    attempt: int
    steps: list[tuple[int, str, dict[str, Any] | None]] = field(default_factory=list)
    sealed: bool = False


@dataclass(eq=False)
class EndOp(_Op):
    ending: batch_db.Ending
    after: list[asyncio.Future[Any]] = field(default_factory=list)


@dataclass(eq=False)
class RedisOp(_Op):
    """Redis commands (live output) sent in the pipeline that publishes the next flush's events,
    ahead of them, in the order they were given."""

    commands: list[Command]


class _Uncertain(Exception):
    """COMMIT was sent and no answer came back."""

    def __init__(self, xid: int, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.xid = xid


class WriteBuffer:
    """One per worker process (see `runtime.process`)."""

    def __init__(
        self, services: Services, *, wait_seconds: float, max_ops: int, retry_seconds: float
    ) -> None:
        self.services = services
        self.wait_seconds = wait_seconds
        self.max_ops = max_ops
        self.retry_seconds = retry_seconds
        self._queue: list[_Op] = []
        self._first_at = 0.0
        self._claims: dict[uuid.UUID, ClaimOp] = {}
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._drained = asyncio.Event()  # set when a flush ends with nothing left waiting
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.flushes = 0  # flushes committed, for tests and benchmarks

    # --- what callers use -------------------------------------------------------------------

    def claim(self, job_id: uuid.UUID, starts: str) -> asyncio.Future[ClaimResult]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ClaimResult] = loop.create_future()
        if job_id in self._claims:  # a second delivery in the same flush: the first one claims
            future.set_result(ClaimResult(ClaimOutcome.NOT_CLAIMABLE))
            return future
        op = ClaimOp(future, job_id, starts)
        self._claims[job_id] = op
        self._add(op)
        return future

    def step(
        self,
        op: StepsOp | None,
        job_id: uuid.UUID,
        attempt: int,
        step: tuple[int, str, dict[str, Any] | None],
    ) -> StepsOp:
        """Add a step to the job's open operation, or open one; the operation is returned (its
        future says whether the steps were stored)."""
        if op is None or op.sealed:
            op = StepsOp(asyncio.get_running_loop().create_future(), job_id, attempt)
            self._add(op)
        op.steps.append(step)
        return op

    def end(
        self, ending: batch_db.Ending, *, after: list[asyncio.Future[Any]]
    ) -> asyncio.Future[EndResult]:
        """End a job; `after` are its earlier step operations: if one of them failed, so does this."""
        future: asyncio.Future[EndResult] = asyncio.get_running_loop().create_future()
        self._add(EndOp(future, ending, after))
        return future

    def redis(self, commands: list[Command]) -> asyncio.Future[None]:
        """Send Redis commands with the next flush's publishes, ahead of the events of the
        operations added after them; the future fails with the Redis error, if any."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._add(RedisOp(future, commands))
        return future

    async def close(self) -> None:
        """Write what waits, then stop."""
        self._closed = True
        if self._task is not None:
            self._wake.set()
            self._full.set()
            # Waits for a flush in progress too: cancelled inside its Redis pipeline, the
            # cancellation could be taken for a Redis timeout and lost.
            if not self._drained.is_set() and not self._task.done():
                await self._drained.wait()
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for op in self._queue:
            if not op.future.done():
                op.future.set_exception(RuntimeError("the worker is shutting down"))
        self._queue.clear()

    # --- the flusher ------------------------------------------------------------------------

    def _add(self, op: _Op) -> None:
        if self._closed and self._task is None:
            raise RuntimeError("the write buffer is closed")
        if not self._queue:
            self._first_at = time.monotonic()
        self._queue.append(op)
        self._drained.clear()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()
        if len(self._queue) >= self.max_ops:
            self._full.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            left = self._first_at + self.wait_seconds - time.monotonic()
            if left > 0 and len(self._queue) < self.max_ops:
                try:
                    async with asyncio.timeout(left):
                        await self._full.wait()
                except TimeoutError:
                    pass
            batch, self._queue = self._queue[: self.max_ops], self._queue[self.max_ops :]
            if self._queue:
                self._first_at = time.monotonic()
            else:
                self._wake.clear()
            self._full.clear()
            for op in batch:
                if isinstance(op, StepsOp):
                    op.sealed = True
                elif isinstance(op, ClaimOp):
                    self._claims.pop(op.job_id, None)
            try:
                await self._flush(batch)
            except Exception as exc:  # never leave a caller waiting
                logger.exception("write buffer: flush failed")
                _fail(batch, exc)
            if not self._queue:
                self._drained.set()

    async def _flush(self, batch: list[_Op]) -> None:
        sends = [op for op in batch if isinstance(op, RedisOp)]
        writes = [op for op in batch if not isinstance(op, RedisOp)]
        tx = await self._write_all(writes) if writes else None
        commands = [command for op in sends for command in op.commands]
        if tx is None:
            failed = await broadcast.publish(self.services.redis, [], before=commands)
        else:
            failed = await after_commit(self.services, tx, before=commands)
        for op in sends:
            if op.future.done():
                continue
            if failed is None:
                op.future.set_result(None)
            else:
                op.future.set_exception(failed)

    async def _write_all(self, batch: list[_Op]) -> Tx | None:
        """Write the batch, retrying; each operation's future gets its outcome. The committed
        transaction, for its after-commit work (None when nothing committed or it is unknown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_seconds
        delay = 0.05
        while True:
            try:
                tx, results = await self._write(batch)
                break
            except _Uncertain as uncertain:
                committed = await self._committed(uncertain.xid, deadline)
                if committed:
                    logger.warning("write buffer: COMMIT's answer lost; it did commit")
                    _resolve_unknown(batch)
                    return None
                if committed is None:
                    _fail(
                        batch,
                        RuntimeError(f"could not learn whether a flush committed: {uncertain}"),
                    )
                    return None
            except _NOT_RETRYABLE as exc:
                _fail(batch, exc)
                return None
            except Exception as exc:
                if loop.time() >= deadline:
                    _fail(batch, exc)
                    return None
                logger.warning("write buffer: flush failed, retrying: %s", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        self.flushes += 1
        for op, result in results:
            if op.future.done():
                continue
            if isinstance(result, BaseException):
                op.future.set_exception(result)
            else:
                op.future.set_result(result)
        return tx

    async def _committed(self, xid: int, deadline: float) -> bool | None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with self.services.reads.connect() as conn:
                    status = await batch_db.xact_committed(conn, xid)
                if status is not None:
                    return status
            except Exception as exc:
                logger.warning("write buffer: cannot check the flush yet: %s", exc)
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(0.2)

    async def _write(self, batch: list[_Op]) -> tuple[Tx, list[tuple[_Op, Any]]]:
        async with self.services.engine.connect() as conn:
            trans = await conn.begin()
            try:
                xid = await batch_db.current_xact(conn)
                tx = Tx(conn)
                results = await self._statements(tx, batch)
            except BaseException:
                with contextlib.suppress(Exception):
                    await trans.rollback()
                raise
            try:
                await trans.commit()
            except Exception as exc:
                raise _Uncertain(xid, exc) from exc
        return tx, results

    async def _statements(self, tx: Tx, batch: list[_Op]) -> list[tuple[_Op, Any]]:
        settings = self.services.settings
        conn = tx.conn
        results: list[tuple[_Op, Any]] = []
        steps_ops = [op for op in batch if isinstance(op, StepsOp)]
        end_ops = [op for op in batch if isinstance(op, EndOp)]
        claim_ops = [op for op in batch if isinstance(op, ClaimOp)]

        if steps_ops:
            steps = [
                batch_db.Step(op.job_id, op.attempt, progress, message, data)
                for op in steps_ops
                for progress, message, data in op.steps
            ]
            stored = await batch_db.store_steps(conn, steps, lease_seconds=settings.lease_seconds)
            by_job: dict[uuid.UUID, list[batch_db.StoredEvent]] = defaultdict(list)
            for item in stored:
                by_job[uuid.UUID(str(item.job.id))].append(item)
                await _record(tx, item)
            for op in steps_ops:
                mine = by_job.get(op.job_id)
                results.append((op, mine[-1].job if mine else JobGone()))

        if end_ops:
            await self._end(tx, end_ops, results)

        if claim_ops:
            rows = await batch_db.claim_jobs(
                conn,
                [(claim.job_id, claim.starts) for claim in claim_ops],
                max_running_per_user=settings.max_running_per_user,
                lease_seconds=settings.lease_seconds,
            )
            for claim, row in zip(claim_ops, rows, strict=True):
                results.append((claim, await _claim_result(tx, row)))
        return results

    async def _end(self, tx: Tx, end_ops: list[EndOp], results: list[tuple[_Op, Any]]) -> None:
        settings = self.services.settings
        live_ops: list[EndOp] = []
        for op in end_ops:
            failed = next((f for f in op.after if f.done() and f.exception() is not None), None)
            if failed is not None:
                results.append((op, failed.exception()))
            else:
                live_ops.append(op)
        if not live_ops:
            return
        locked = await batch_db.lock_for_ending(
            tx.conn, [(op.ending.job_id, op.ending.attempt) for op in live_ops]
        )
        balances = {lock.user_id: lock.tokens for lock in locked.values()}
        endings: list[batch_db.Ending] = []
        refused: set[uuid.UUID] = set()
        for op in live_ops:
            ending = op.ending
            lock = locked.get(ending.job_id)
            if lock is None or not lock.live:
                continue
            if ending.status == "completed" and ending.charge > 0:
                balance = balances[lock.user_id]
                if balance < ending.charge:
                    error = insufficient_tokens(balance, ending.charge)
                    refused.add(ending.job_id)
                    ending = batch_db.Ending(
                        ending.job_id,
                        ending.attempt,
                        "failed",
                        error.message,
                        error={"code": error.code, "message": error.message},
                    )
                else:
                    balances[lock.user_id] = balance - ending.charge
            endings.append(ending)
        stored = await batch_db.end_jobs(tx.conn, endings) if endings else []
        ended: dict[uuid.UUID, JobRow] = {}
        for item in stored:
            ended[uuid.UUID(str(item.job.id))] = item.job
            await _record(tx, item)
        for op in live_ops:
            row = ended.get(op.ending.job_id)
            if row is None:
                results.append((op, EndResult(EndOutcome.GONE)))
            elif op.ending.job_id in refused:
                results.append((op, EndResult(EndOutcome.INSUFFICIENT_TOKENS, row)))
            else:
                results.append((op, EndResult(EndOutcome.ENDED, row)))
        users = [int(row.user_id) for row in ended.values()]
        if users:
            tx.enqueue.extend(
                await batch_db.unpark(tx.conn, users, limit=settings.max_running_per_user)
            )


async def _record(tx: Tx, item: batch_db.StoredEvent) -> None:
    """Publish the event after commit, and write the webhook delivery it calls for, if any."""
    changed = ChangedJob(job=item.job, event=item.event)
    tx.record(changed)
    if item.job.webhook:
        await outbox.record(tx, changed)


async def _claim_result(tx: Tx, row: batch_db.ClaimRow) -> ClaimResult:
    if row.claimed is not None:
        await _record(tx, row.claimed)
        return ClaimResult(
            ClaimOutcome.CLAIMED,
            row.claimed.job,
            owner_tokens=row.owner_tokens,
            owner_subscription_expires_at=row.owner_subscription_expires_at,
        )
    if not row.found:
        return ClaimResult(ClaimOutcome.MISSING)
    if not row.known_kind:
        return ClaimResult(ClaimOutcome.UNKNOWN_KIND)
    if row.parked:
        return ClaimResult(ClaimOutcome.PARKED)
    if row.exhausted:
        return ClaimResult(ClaimOutcome.EXHAUSTED)
    return ClaimResult(ClaimOutcome.NOT_CLAIMABLE)


def _fail(batch: list[_Op], exc: BaseException) -> None:
    for op in batch:
        if not op.future.done():
            op.future.set_exception(exc)


def _resolve_unknown(batch: list[_Op]) -> None:
    for op in batch:
        if op.future.done():
            continue
        if isinstance(op, ClaimOp):
            op.future.set_result(ClaimResult(ClaimOutcome.UNKNOWN))
        elif isinstance(op, EndOp):
            op.future.set_result(EndResult(EndOutcome.UNKNOWN))
        else:
            op.future.set_result(None)


__all__ = [
    "ClaimOutcome",
    "ClaimResult",
    "EndOutcome",
    "EndResult",
    "StepsOp",
    "WriteBuffer",
]
