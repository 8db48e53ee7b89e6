"""Periodic repair: PostgreSQL says what should be running; Redis is made to agree.

- queued jobs Redis lost (a Redis restart, a crash between commit and enqueue) are enqueued again;
- processing jobs whose worker died (lease expired) are handed to another worker;
- parked jobs get the running slots that freed up;
- jobs past their deadline fail with `timeout`;
- webhook deliveries Redis lost are enqueued again, and attempts cut short by a dead worker retried.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from jobrelay.db import jobs as jobs_db
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
    for row in stranded:
        if str(row.id) not in held:
            await services.queue.enqueue_job(row.id)
            report.requeued += 1
        elif row.status == JobStatus.PROCESSING.value:
            await services.queue.release_stale(row.id)
            report.released += 1
    for user_id in parked_users:
        async with transaction(services) as tx:
            released = await jobs_db.unpark_next(
                tx.conn, user_id=user_id, limit=services.settings.max_running_per_user
            )
            tx.enqueue.extend(released)
        report.unparked += len(released)
    for job_id in overdue:
        if await fail_overdue(services, job_id):
            report.timed_out += 1
    report.webhooks_resent = await webhook_delivery.resend_lost(services)
    if any(vars(report).values()):
        logger.info("reconcile: %s", report)
    return report


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
