"""The outbox: a job change that a subscriber asked to hear about becomes a pending delivery in
the same transaction as the change, and its delivery task is enqueued after commit. A delivery
therefore exists exactly when the change does, and one lost from Redis is re-sent by the
reconciler from PostgreSQL.

Progress is coalesced: while a progress message is waiting to be sent, newer progress replaces
its payload instead of adding a message, and a new one waits until 500 ms after the previous
one was sent. The job's ending drops progress still waiting.
"""

from __future__ import annotations

from jobrelay.db import deliveries as deliveries_db
from jobrelay.db.jobs import ChangedJob
from jobrelay.signing import new_message_id
from jobrelay.tx import Task, Tx
from jobrelay.webhooks import events

DELIVER_WEBHOOK = "deliver_webhook"
PROGRESS_INTERVAL_SECONDS = 0.5


def task_id(delivery_id: int) -> str:
    """The ARQ job id of a delivery's task: enqueueing it twice is harmless."""
    return f"webhook:{delivery_id}"


def delivery_task(delivery_id: int, *, defer_seconds: float = 0) -> Task:
    return Task(
        DELIVER_WEBHOOK, (delivery_id,), task_id=task_id(delivery_id), defer_seconds=defer_seconds
    )


async def record(tx: Tx, changed: ChangedJob) -> None:
    """Queue the webhook message this change calls for, if the job subscribed to it."""
    job, event = changed.job, changed.event
    if not job.webhook:
        return
    subscription = events.subscription_of(event)
    if subscription is None or subscription not in (job.webhook_events_filter or ()):
        return
    type_ = events.message_type(subscription, str(event["status"]))
    payload = events.message(job, event, type_)
    spacing = 0.0
    if subscription == events.PROGRESS:
        coalesced = await deliveries_db.refresh_pending(
            tx.conn, job_id=job.id, event_type=type_, payload=payload
        )
        if coalesced is not None:
            return
        spacing = PROGRESS_INTERVAL_SECONDS
    elif subscription == events.COMPLETED:
        await deliveries_db.drop_pending(tx.conn, job_id=job.id, event_type=events.PROGRESS_TYPE)
    delivery_id, due_in = await deliveries_db.insert_pending(
        tx.conn,
        job_id=job.id,
        webhook_id=new_message_id(),
        event_type=type_,
        url=str(job.webhook),
        payload=payload,
        spacing_seconds=spacing,
    )
    tx.tasks.append(delivery_task(delivery_id, defer_seconds=due_in))
