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

from jobrelay.db import batch as batch_db
from jobrelay.db import jobs as jobs_db
from jobrelay.db.jobs import JobRow
from jobrelay.jobs import lifecycle
from jobrelay.jobs.states import JobStatus
from jobrelay.runtime.backoff import backoff_delay
from jobrelay.runtime.claim import Claim, claim_job
from jobrelay.runtime.context import Owner, RunContext
from jobrelay.runtime.errors import JobFailed, JobGone, TransientError, insufficient_tokens
from jobrelay.runtime.output import with_output
from jobrelay.runtime.process import runtime_of
from jobrelay.runtime.registry import KindRunner, Outcome
from jobrelay.runtime.writes import ClaimOutcome
from jobrelay.services import Services
from jobrelay.tx import transaction

__all__ = ["RunAgain", "fail", "insufficient_tokens", "run"]

logger = logging.getLogger(__name__)
MISSING_ROW_RETRIES = 5


@dataclass(frozen=True)
class RunAgain:
    """Deliver this job again after `delay` seconds."""

    delay: float


def _starts(registry: dict[str, KindRunner]) -> str:
    """The claim's map of the kinds this worker runs to how each one starts."""
    return batch_db.dumps({k: [r.start_progress, r.start_message] for k, r in registry.items()})


async def run(
    services: Services,
    registry: dict[str, KindRunner],
    job_id: uuid.UUID,
    *,
    delivery: int,
) -> RunAgain | None:
    runtime = runtime_of(services)
    claimed = await runtime.writes.claim(job_id, _starts(registry))
    outcome = claimed.outcome
    if outcome is ClaimOutcome.CLAIMED and claimed.job is not None:
        owner = None
        if claimed.owner_tokens is not None:
            owner = Owner(int(claimed.owner_tokens), claimed.owner_subscription_expires_at)
        return await _execute(services, registry[claimed.job.kind], claimed.job, owner)
    if outcome is ClaimOutcome.MISSING:
        return RunAgain(0.2) if delivery < MISSING_ROW_RETRIES else None
    if outcome is ClaimOutcome.UNKNOWN_KIND:
        logger.error("job %s has a kind this worker cannot run", job_id)
        return RunAgain(30.0)
    if outcome is ClaimOutcome.UNKNOWN:
        # The claim committed but its answer was lost: run it again once that lease runs out.
        return RunAgain(services.settings.lease_seconds + 1.0)
    if outcome is ClaimOutcome.EXHAUSTED:
        async with services.reads.connect() as conn:
            row = await jobs_db.get_job(conn, job_id)
        runner = registry.get(row.kind) if row is not None else None
        if runner is not None:
            slow = await claim_job(services, job_id, runner)
            if isinstance(slow, Claim):
                return await _execute(services, runner, slow.job, None)
    return None


async def _execute(
    services: Services, runner: KindRunner, job: JobRow, owner: Owner | None
) -> RunAgain | None:
    ctx = RunContext(services, job, owner)
    leases = runtime_of(services).leases
    lost = asyncio.Event()
    body = asyncio.current_task()

    def on_lost() -> None:
        lost.set()
        if body is not None:
            body.cancel()

    leases.hold(ctx.job_id, ctx.attempt, on_lost)
    again: RunAgain | None = None
    try:
        remaining = _seconds_left(job.deadline_at)
        async with asyncio.timeout(remaining):
            outcome = await runner.handler(ctx)
        leases.release(ctx.job_id, ctx.attempt)
        await _finish(ctx, outcome)
    except JobGone:
        logger.info("job %s: canceled or taken over, stopping", ctx.job_id)
    except JobFailed as exc:
        await _store_pending(ctx)
        await _fail(ctx, exc.code, exc.message)
    except TimeoutError:
        await _store_pending(ctx)
        await _fail(
            ctx,
            "timeout",
            f"The job did not finish within its deadline of {job.deadline_seconds} s.",
        )
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if lost.is_set() and task is not None:
            task.uncancel()
            logger.info("job %s: canceled or taken over, stopped", ctx.job_id)
            return None
        leases.release(ctx.job_id, ctx.attempt)
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
        leases.release(ctx.job_id, ctx.attempt)
        ctx.discard()
        await ctx.end_output(starting_over=again is not None)
    return None


def _seconds_left(deadline_at: dt.datetime | None) -> float | None:
    if deadline_at is None:
        return None
    return max(0.0, (deadline_at - dt.datetime.now(dt.UTC)).total_seconds())


async def _finish(ctx: RunContext, outcome: Outcome) -> None:
    """Store the outcome after the steps the body reported (in the same flush when they are
    still waiting); a completion takes its token charge in the same statement."""
    services = ctx.services
    if outcome.detach:
        await ctx.settle()
        async with transaction(services) as tx:
            row = await lifecycle.report_progress(
                tx,
                ctx.job_id,
                progress=int(ctx.job.progress),
                message=outcome.message,
                where=[jobs_db.is_attempt(ctx.attempt)],
                values={"lease_expires_at": None, **(outcome.detach_values or {})},
            )
        if row is None:
            raise JobGone()
        return
    ending = batch_db.Ending(
        ctx.job_id,
        ctx.attempt,
        "completed",
        outcome.message,
        result=with_output(outcome.result, await ctx.close_output()),
        charge=outcome.charge_tokens,
    )
    await runtime_of(services).writes.end(ending, after=ctx.outstanding)


async def _fail(ctx: RunContext, code: str, message: str) -> None:
    """End this attempt's job as failed, through the write buffer."""
    ending = batch_db.Ending(
        ctx.job_id, ctx.attempt, "failed", message, error={"code": code, "message": message}
    )
    with contextlib.suppress(JobGone):
        await runtime_of(ctx.services).writes.end(ending, after=[])


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
        await _fail(ctx, code, f"{message} (gave up after {ctx.attempt} attempts)")
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
