"""Claiming a job for one attempt: a conditional UPDATE, so a second delivery of the same job
is harmless, with the per-user running limit enforced under a per-user advisory lock."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import Enum

from jobrelay.db import jobs as jobs_db
from jobrelay.db.jobs import JobRow
from jobrelay.jobs import lifecycle
from jobrelay.jobs.states import JobStatus
from jobrelay.runtime.registry import KindRunner
from jobrelay.services import Services
from jobrelay.tx import transaction
from jobrelay.webhooks import outbox


class Unclaimed(Enum):
    MISSING = "missing"  # no such row (yet): the submit may not have committed
    NOT_CLAIMABLE = "not_claimable"  # terminal, canceled, or running elsewhere under a live lease
    PARKED = "parked"  # the owner's running slots are full; released when one frees up
    EXHAUSTED = "exhausted"  # the attempt budget ran out; the job was failed


@dataclass(frozen=True)
class Claim:
    job: JobRow

    @property
    def attempt(self) -> int:
        return int(self.job.attempts)


async def claim_job(services: Services, job_id: uuid.UUID, runner: KindRunner) -> Claim | Unclaimed:
    settings = services.settings
    async with transaction(services) as tx:
        owner = await jobs_db.get_user_role(tx.conn, job_id)
        if owner is None:
            return Unclaimed.MISSING
        if owner.status not in (JobStatus.QUEUED.value, JobStatus.PROCESSING.value):
            return Unclaimed.NOT_CLAIMABLE
        if owner.role != "admin" and owner.status == JobStatus.QUEUED.value:
            await jobs_db.lock_user(tx.conn, owner.user_id)
            if await jobs_db.count_running(tx.conn, owner.user_id) >= settings.max_running_per_user:
                await jobs_db.park(tx.conn, job_id)
                return Unclaimed.PARKED
        changed = await jobs_db.change_job(
            tx.conn,
            job_id,
            values={
                "status": JobStatus.PROCESSING.value,
                "attempts": jobs_db.next_attempt(),
                "progress": runner.start_progress,
                "message": runner.start_message,
                "started_at": jobs_db.started_at_or_now(),
                "deadline_at": jobs_db.deadline_or(jobs_db.deadline_from_job()),
                "lease_expires_at": jobs_db.seconds_from_now(settings.lease_seconds),
                "parked": False,
            },
            where=[jobs_db.is_claimable(), jobs_db.has_attempts_left()],
            event=jobs_db.EventSpec("status", {"started": True}),
        )
        if isinstance(changed, jobs_db.ChangedJob):
            await outbox.record(tx, changed)
            return Claim(tx.record(changed))
        failed = await lifecycle.move(
            tx,
            job_id,
            JobStatus.FAILED,
            message="The job was interrupted too many times; giving up.",
            values={
                "error": {
                    "code": "worker_lost",
                    "message": "The worker running this job stopped before it finished, "
                    "on every attempt. Retry the job, or check the worker logs.",
                }
            },
            where=[jobs_db.is_lease_expired(), ~jobs_db.has_attempts_left()],
            max_running_per_user=settings.max_running_per_user,
        )
        return Unclaimed.EXHAUSTED if failed is not None else Unclaimed.NOT_CLAIMABLE
