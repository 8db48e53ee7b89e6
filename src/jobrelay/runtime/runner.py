"""Run one delivery of one job: claim, execute the kind's body, finish in exactly one terminal state.

Outcomes of a body: a result (completed), `JobFailed` (failed), `TransientError` (retried after a
backoff while the attempt budget lasts), `JobGone` (canceled or superseded: nothing to write),
the deadline passing (failed: `timeout`). Any other exception counts as transient, so a bug in
one attempt does not lose the job, and the budget still guarantees an end.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from jobrelay.db import jobs as jobs_db
from jobrelay.db import users as users_db
from jobrelay.jobs import lifecycle
from jobrelay.jobs.states import JobStatus
from jobrelay.runtime.backoff import backoff_delay
from jobrelay.runtime.claim import Claim, Unclaimed, claim_job
from jobrelay.runtime.context import RunContext
from jobrelay.runtime.errors import JobFailed, JobGone, TransientError
from jobrelay.runtime.output import with_output
from jobrelay.runtime.registry import KindRunner, Outcome
from jobrelay.services import Services
from jobrelay.tx import Tx, transaction

logger = logging.getLogger(__name__)
MISSING_ROW_RETRIES = 5


@dataclass(frozen=True)
class RunAgain:
    """Deliver this job again after `delay` seconds."""

    delay: float


async def run(
    services: Services,
    registry: dict[str, KindRunner],
    job_id: uuid.UUID,
    *,
    delivery: int,
) -> RunAgain | None:
    async with services.reads.connect() as conn:
        row = await jobs_db.get_job(conn, job_id)
    if row is None:
        return RunAgain(0.2) if delivery < MISSING_ROW_RETRIES else None
    runner = registry.get(row.kind)
    if runner is None:
        logger.error("job %s has kind %s, which this worker cannot run", job_id, row.kind)
        return RunAgain(30.0)
    claimed = await claim_job(services, job_id, runner)
    if isinstance(claimed, Unclaimed):
        if claimed is Unclaimed.MISSING and delivery < MISSING_ROW_RETRIES:
            return RunAgain(0.2)
        return None
    return await _execute(services, runner, claimed)


async def _execute(services: Services, runner: KindRunner, claim: Claim) -> RunAgain | None:
    ctx = RunContext(services, claim.job)
    lost = asyncio.Event()
    heartbeat = asyncio.create_task(_heartbeat(ctx, asyncio.current_task(), lost))
    again: RunAgain | None = None
    try:
        remaining = _seconds_left(claim.job.deadline_at)
        async with asyncio.timeout(remaining):
            outcome = await runner.handler(ctx)
        heartbeat.cancel()
        await _finish(ctx, outcome)
    except JobGone:
        logger.info("job %s: canceled or taken over, stopping", ctx.job_id)
    except JobFailed as exc:
        await _store_pending(ctx)
        await fail(services, ctx.job_id, ctx.attempt, exc.code, exc.message)
    except TimeoutError:
        await _store_pending(ctx)
        await fail(
            services,
            ctx.job_id,
            ctx.attempt,
            "timeout",
            f"The job did not finish within its deadline of {claim.job.deadline_seconds} s.",
        )
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if lost.is_set() and task is not None:
            task.uncancel()
            logger.info("job %s: canceled or taken over, stopped", ctx.job_id)
            return None
        await _on_cancelled(ctx)
        raise
    except TransientError as exc:
        await _store_pending(ctx)
        again = await _retry_or_fail(ctx, exc.code, exc.message)
        return again
    except Exception as exc:
        logger.exception("job %s: attempt %d crashed", ctx.job_id, ctx.attempt)
        await _store_pending(ctx)
        again = await _retry_or_fail(ctx, "job_error", f"{type(exc).__name__}: {exc}")
        return again
    finally:
        ctx.discard()
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
        await ctx.end_output(starting_over=again is not None)
    return None


def _seconds_left(deadline_at: dt.datetime | None) -> float | None:
    if deadline_at is None:
        return None
    return max(0.0, (deadline_at - dt.datetime.now(dt.UTC)).total_seconds())


async def _heartbeat(ctx: RunContext, body: asyncio.Task[Any] | None, lost: asyncio.Event) -> None:
    """Renew the lease while the body runs; if the job is gone, stop the body."""
    interval = max(0.5, ctx.settings.lease_seconds / 3)
    while True:
        await asyncio.sleep(interval)
        try:
            async with ctx.services.engine.begin() as conn:
                alive = await jobs_db.renew_lease(
                    conn, ctx.job_id, attempt=ctx.attempt, seconds=ctx.settings.lease_seconds
                )
        except Exception as exc:
            logger.warning("job %s: lease renewal failed: %s", ctx.job_id, exc)
            continue
        if not alive and body is not None:
            lost.set()
            body.cancel()
            return


async def _finish(ctx: RunContext, outcome: Outcome) -> None:
    """Store the outcome in one transaction with the steps still waiting to be stored."""
    services = ctx.services
    await ctx.settle()
    if outcome.detach:
        async with transaction(services) as tx:
            current = await ctx.store_pending(tx) or ctx.job
            row = await lifecycle.report_progress(
                tx,
                ctx.job_id,
                progress=int(current.progress),
                message=outcome.message,
                where=[jobs_db.is_attempt(ctx.attempt)],
                values={"lease_expires_at": None, **(outcome.detach_values or {})},
            )
        if row is None:
            raise JobGone()
        return
    result = with_output(outcome.result, await ctx.close_output())
    try:
        async with transaction(services) as tx:
            await ctx.store_pending(tx)
            row = await lifecycle.move(
                tx,
                ctx.job_id,
                JobStatus.COMPLETED,
                message=outcome.message,
                values={"result": result, "progress": 100, "error": None},
                where=[jobs_db.is_attempt(ctx.attempt)],
                max_running_per_user=services.settings.max_running_per_user,
            )
            if row is not None and outcome.charge_tokens:
                await _charge(tx, row.user_id, outcome.charge_tokens)
    except JobFailed as exc:
        await fail(services, ctx.job_id, ctx.attempt, exc.code, exc.message)


async def _charge(tx: Tx, user_id: int, amount: int) -> None:
    if await users_db.charge_tokens(tx.conn, user_id=user_id, amount=amount) is None:
        user = await users_db.get_user(tx.conn, user_id)
        raise insufficient_tokens(int(user.tokens) if user else 0, amount)


def insufficient_tokens(balance: int, cost: int) -> JobFailed:
    return JobFailed(
        "insufficient_tokens",
        f"This job costs {cost} tokens and the balance is {balance}.",
    )


async def fail(
    services: Services, job_id: uuid.UUID, attempt: int | None, code: str, message: str
) -> bool:
    """End a processing job as failed (for one attempt, or whichever is current)."""
    where = [jobs_db.is_attempt(attempt)] if attempt is not None else []
    async with transaction(services) as tx:
        row = await lifecycle.move(
            tx,
            job_id,
            JobStatus.FAILED,
            message=message,
            values={"error": {"code": code, "message": message}},
            where=where,
            max_running_per_user=services.settings.max_running_per_user,
        )
    return row is not None


async def _retry_or_fail(ctx: RunContext, code: str, message: str) -> RunAgain | None:
    if ctx.attempt >= int(ctx.job.max_attempts):
        await fail(
            ctx.services,
            ctx.job_id,
            ctx.attempt,
            code,
            f"{message} (gave up after {ctx.attempt} attempts)",
        )
        return None
    settings = ctx.settings
    delay = backoff_delay(ctx.attempt, base=settings.retry_base_delay, cap=settings.retry_max_delay)
    async with transaction(ctx.services) as tx:
        row = await lifecycle.report_progress(
            tx,
            ctx.job_id,
            progress=0,
            message=f"Attempt {ctx.attempt} failed ({message}); retrying in {delay:.1f} s",
            where=[jobs_db.is_attempt(ctx.attempt)],
            values={"lease_expires_at": jobs_db.seconds_from_now(0)},
            data={"retry_in_seconds": round(delay, 2), "error": {"code": code, "message": message}},
        )
    return RunAgain(delay) if row is not None else None


async def _store_pending(ctx: RunContext) -> None:
    """Steps the body reported before it ended are stored before its outcome: none is dropped."""
    try:
        await ctx.settle()
        if ctx.has_pending:
            async with transaction(ctx.services) as tx:
                await ctx.store_pending(tx)
    except JobGone:
        ctx.discard()
    except Exception as exc:
        logger.warning("job %s: could not store its last progress steps: %s", ctx.job_id, exc)


async def _on_cancelled(ctx: RunContext) -> None:
    """The task was cancelled: by an abort (the job is canceled already) or a worker shutdown,
    in which case the lease is given up so another worker resumes the job at once."""
    await _store_pending(ctx)
    try:
        async with ctx.services.engine.begin() as conn:
            await jobs_db.renew_lease(conn, ctx.job_id, attempt=ctx.attempt, seconds=0)
    except Exception as exc:
        logger.warning("job %s: could not release the lease: %s", ctx.job_id, exc)
