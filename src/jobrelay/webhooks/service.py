"""Reading a job's webhook deliveries; the job must be visible to the caller."""

from __future__ import annotations

import uuid

from jobrelay.db import deliveries as deliveries_db
from jobrelay.db.deliveries import DeliveryRow
from jobrelay.jobs import service as jobs_service
from jobrelay.services import Services
from jobrelay.users.service import Caller
from jobrelay.webhooks.schemas import DeliveryList, DeliveryOut


def _out(row: DeliveryRow) -> DeliveryOut:
    waiting = row.outcome == deliveries_db.PENDING
    return DeliveryOut(
        id=row.id,
        job_id=row.job_id,
        webhook_id=row.webhook_id,
        event_type=row.event_type,
        url=row.url,
        attempt=row.attempt,
        outcome=row.outcome,
        status_code=row.status_code,
        error=row.error,
        duration_ms=row.duration_ms,
        attempted_at=None if waiting else row.attempted_at,
        next_attempt_at=row.next_attempt_at,
    )


async def list_deliveries(services: Services, caller: Caller, job_id: uuid.UUID) -> DeliveryList:
    await jobs_service.ensure_visible(services, caller, job_id)
    async with services.engine.connect() as conn:
        rows = await deliveries_db.list_for_job(conn, job_id)
    return DeliveryList(items=[_out(row) for row in rows])
