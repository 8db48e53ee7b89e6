"""One webhook attempt, run as a worker task: claim it, sign, send, record, schedule the retry.

Retries (network errors, timeouts, any non-2xx but 410) back off exponentially with jitter and
keep the message's `webhook-id`; each is a row of its own. `410 Gone` ends every delivery of that
job. A progress message starts at least 500 ms after the job's previous one ended (one that comes
too soon is handed back, due later). An attempt is claimed before it is sent, so two deliveries
of the same task send once; a worker that dies mid-send leaves a `sending` row that the
reconciler closes and retries.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from jobrelay import signing
from jobrelay.db import deliveries as deliveries_db
from jobrelay.db.deliveries import DeliveryRow
from jobrelay.runtime.backoff import backoff_delay
from jobrelay.services import Services
from jobrelay.stats import counters
from jobrelay.tx import Tx, transaction
from jobrelay.webhooks import events, sender
from jobrelay.webhooks.outbox import PROGRESS_INTERVAL_SECONDS, delivery_task, task_id
from jobrelay.webhooks.sender import Attempt, Outcome

logger = logging.getLogger(__name__)

GONE_REASON = "not sent: the receiver answered 410 Gone to an earlier message of this job"
INTERRUPTED = "the worker stopped while sending; the outcome is unknown"
OVERDUE_SECONDS = 5.0


@dataclass(frozen=True)
class NotDue:
    """The task ran before its attempt was due; run it again after `delay` seconds."""

    delay: float


def body_of(row: DeliveryRow) -> bytes:
    """The exact bytes sent (and signed): the stored message, in the contract's key order."""
    return json.dumps(events.ordered(row.payload), separators=(",", ":")).encode()


async def deliver(services: Services, delivery_id: int) -> NotDue | None:
    """Make the attempt `delivery_id` if it is still pending and due."""
    async with transaction(services) as tx:
        row = await deliveries_db.claim(tx.conn, delivery_id)
        if row is None:
            current = await deliveries_db.get(tx.conn, delivery_id)
            if current is not None and current.outcome == deliveries_db.PENDING:
                return NotDue(max(0.05, float(current.due_in)))
            return None
        if row.event_type == events.PROGRESS_TYPE and row.attempt == 1:
            wait = await deliveries_db.spacing_wait(
                tx.conn, row, interval_seconds=PROGRESS_INTERVAL_SECONDS
            )
            if wait > 0:
                await deliveries_db.postpone(tx.conn, row.id, wait)
                return NotDue(wait)
        secret = await deliveries_db.owner_secret(tx.conn, row.job_id)
        if secret is None or await deliveries_db.has_gone(tx.conn, row.job_id):
            await _skip(tx, row)
            return None
    body = body_of(row)
    headers = signing.sign_now(secret, body, msg_id=row.webhook_id)
    attempt = await sender.post(row.url, body, headers, services.settings)
    async with transaction(services) as tx:
        await _record(services, tx, row, attempt)
    await counters.count_delivery(services.redis, attempt.outcome.value)
    if attempt.outcome is not Outcome.DELIVERED:
        logger.info(
            "webhook %s attempt %d for job %s: %s %s",
            row.webhook_id,
            row.attempt,
            row.job_id,
            attempt.outcome.value,
            attempt.error or "",
        )
    return None


async def _skip(tx: Tx, row: DeliveryRow) -> None:
    """A claimed attempt that must not be sent: the receiver said 410 for this job earlier."""
    await deliveries_db.finish_attempt(
        tx.conn,
        row.id,
        outcome=deliveries_db.SKIPPED,
        status_code=None,
        error=GONE_REASON,
        duration_ms=None,
        retry_in_seconds=None,
    )
    await deliveries_db.skip_pending_for_job(tx.conn, row.job_id, GONE_REASON)


async def _record(services: Services, tx: Tx, row: DeliveryRow, attempt: Attempt) -> None:
    """Store the attempt's outcome and line up the retry it calls for."""
    settings = services.settings
    retry_in = None
    if attempt.outcome.retryable and row.attempt < settings.webhook_max_attempts:
        retry_in = backoff_delay(
            row.attempt,
            base=settings.webhook_retry_base_delay,
            cap=settings.webhook_retry_max_delay,
        )
    finished = await deliveries_db.finish_attempt(
        tx.conn,
        row.id,
        outcome=attempt.outcome.value,
        status_code=attempt.status_code,
        error=attempt.error,
        duration_ms=attempt.duration_ms,
        retry_in_seconds=retry_in,
    )
    if finished is None:
        return
    if attempt.outcome is Outcome.GONE:
        await deliveries_db.skip_pending_for_job(tx.conn, row.job_id, GONE_REASON)
    if retry_in is not None:
        retry_id = await deliveries_db.insert_retry(tx.conn, finished)
        if retry_id is not None:
            tx.tasks.append(delivery_task(retry_id, defer_seconds=retry_in))


async def resend_lost(services: Services) -> int:
    """Reconciler step: close attempts whose worker died, re-enqueue pending ones Redis lost."""
    settings = services.settings
    async with services.engine.connect() as conn:
        stale = await deliveries_db.stale_sending(
            conn, older_than_seconds=settings.webhook_timeout + 60
        )
        overdue = await deliveries_db.due_pending(conn, overdue_seconds=OVERDUE_SECONDS)
    for delivery_id in stale:
        async with transaction(services) as tx:
            row = await deliveries_db.get(tx.conn, delivery_id)
            if row is not None and row.outcome == deliveries_db.SENDING:
                await _record(services, tx, row, Attempt(Outcome.ERROR, None, INTERRUPTED, None))
    held = await services.queue.held(task_id(d) for d in overdue)
    resent = 0
    for delivery_id in overdue:
        if task_id(delivery_id) not in held:
            task = delivery_task(delivery_id)
            await services.queue.enqueue_task(task.function, *task.args, task_id=task.task_id)
            resent += 1
    return resent
