"""SQL for outgoing webhook deliveries: an outbox in which every row is one attempt.

A row starts `pending` (due at `next_attempt_at`), is claimed as `sending` by one worker, and ends
with the attempt's outcome. A retry is a new row with the same `webhook_id` and the next
`attempt`; the finished row's `next_attempt_at` then says when that retry is due.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, case, delete, exists, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from jobrelay.db.jobs import seconds_from_now
from jobrelay.db.models import jobs_table as jobs
from jobrelay.db.models import users_table as users
from jobrelay.db.models import webhook_deliveries_table as deliveries

DeliveryRow = Row[*tuple[Any, ...]]

PENDING = "pending"
SENDING = "sending"
GONE = "gone"
SKIPPED = "skipped"
OPEN = (PENDING, SENDING)

__all__ = [
    "claim",
    "drop_pending",
    "due_pending",
    "finish_attempt",
    "get",
    "has_gone",
    "insert_pending",
    "insert_retry",
    "list_for_job",
    "owner_secret",
    "postpone",
    "refresh_pending",
    "skip_pending_for_job",
    "spacing_wait",
    "stale_sending",
]


def _seconds_until(column: Any) -> Any:
    return func.greatest(0, func.extract("epoch", column - func.now()))


async def insert_pending(
    conn: AsyncConnection,
    *,
    job_id: uuid.UUID,
    webhook_id: str,
    event_type: str,
    url: str,
    payload: dict[str, Any],
    spacing_seconds: float = 0,
) -> tuple[int, float]:
    """Queue the first attempt of a message; returns (row id, seconds until it is due).

    With `spacing_seconds`, the attempt is held until that long after the last first attempt
    of the same event type for the job was sent, which caps the rate of progress messages.
    """
    due: Any = func.now()
    if spacing_seconds:
        last_sent = (
            select(func.max(deliveries.c.attempted_at))
            .where(
                deliveries.c.job_id == job_id,
                deliveries.c.event_type == event_type,
                deliveries.c.attempt == 1,
                deliveries.c.outcome != PENDING,
            )
            .scalar_subquery()
        )
        spaced = last_sent + func.make_interval(0, 0, 0, 0, 0, 0, spacing_seconds)
        due = func.greatest(func.now(), func.coalesce(spaced, func.now()))
    stmt = (
        insert(deliveries)
        .values(
            job_id=job_id,
            webhook_id=webhook_id,
            event_type=event_type,
            url=url,
            attempt=1,
            outcome=PENDING,
            payload=payload,
            next_attempt_at=due,
        )
        .returning(deliveries.c.id, _seconds_until(deliveries.c.next_attempt_at))
    )
    row = (await conn.execute(stmt)).one()
    return int(row[0]), float(row[1])


async def refresh_pending(
    conn: AsyncConnection, *, job_id: uuid.UUID, event_type: str, payload: dict[str, Any]
) -> int | None:
    """Give a not-yet-sent first attempt the latest payload (coalescing); its id, or None."""
    newest = (
        select(deliveries.c.id)
        .where(
            deliveries.c.job_id == job_id,
            deliveries.c.event_type == event_type,
            deliveries.c.attempt == 1,
            deliveries.c.outcome == PENDING,
        )
        .order_by(deliveries.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    stmt = (
        update(deliveries)
        .where(deliveries.c.id == newest, deliveries.c.outcome == PENDING)
        .values(payload=payload)
        .returning(deliveries.c.id)
    )
    updated: int | None = (await conn.execute(stmt)).scalar_one_or_none()
    return updated


async def drop_pending(conn: AsyncConnection, *, job_id: uuid.UUID, event_type: str) -> int:
    """Forget first attempts of `event_type` not yet sent (a later message supersedes them)."""
    stmt = delete(deliveries).where(
        deliveries.c.job_id == job_id,
        deliveries.c.event_type == event_type,
        deliveries.c.attempt == 1,
        deliveries.c.outcome == PENDING,
    )
    return int((await conn.execute(stmt)).rowcount)


async def get(conn: AsyncConnection, delivery_id: int) -> DeliveryRow | None:
    stmt = select(
        *deliveries.c, _seconds_until(deliveries.c.next_attempt_at).label("due_in")
    ).where(deliveries.c.id == delivery_id)
    return (await conn.execute(stmt)).first()


async def claim(conn: AsyncConnection, delivery_id: int) -> DeliveryRow | None:
    """Take a due pending attempt for sending; None if it is not pending or not due yet."""
    stmt = (
        update(deliveries)
        .where(
            deliveries.c.id == delivery_id,
            deliveries.c.outcome == PENDING,
            deliveries.c.next_attempt_at <= func.now(),
        )
        .values(outcome=SENDING, attempted_at=func.now())
        .returning(*deliveries.c)
    )
    return (await conn.execute(stmt)).first()


async def spacing_wait(
    conn: AsyncConnection, row: DeliveryRow, *, interval_seconds: float
) -> float:
    """Seconds until `row` may be sent so that it starts `interval_seconds` after the end of the
    job's previous first attempt of the same type (one still in flight counts as ending now)."""
    ended = case(
        (deliveries.c.outcome == SENDING, func.now()),
        else_=deliveries.c.attempted_at
        + func.make_interval(0, 0, 0, 0, 0, 0, func.coalesce(deliveries.c.duration_ms, 0) / 1000),
    )
    stmt = select(
        func.extract(
            "epoch",
            func.max(ended) + func.make_interval(0, 0, 0, 0, 0, 0, interval_seconds) - func.now(),
        )
    ).where(
        deliveries.c.job_id == row.job_id,
        deliveries.c.event_type == row.event_type,
        deliveries.c.attempt == 1,
        deliveries.c.id != row.id,
        deliveries.c.outcome != PENDING,
        deliveries.c.attempted_at > seconds_from_now(-60),
    )
    wait = (await conn.execute(stmt)).scalar_one_or_none()
    return max(0.0, float(wait)) if wait is not None else 0.0


async def postpone(conn: AsyncConnection, delivery_id: int, seconds: float) -> None:
    """Hand a claimed attempt back, due in `seconds`."""
    stmt = (
        update(deliveries)
        .where(deliveries.c.id == delivery_id, deliveries.c.outcome == SENDING)
        .values(outcome=PENDING, next_attempt_at=seconds_from_now(seconds))
    )
    await conn.execute(stmt)


async def owner_secret(conn: AsyncConnection, job_id: uuid.UUID) -> str | None:
    """The webhook secret of the job's owner: outgoing messages are signed with it."""
    stmt = (
        select(users.c.webhook_secret)
        .join(jobs, jobs.c.user_id == users.c.id)
        .where(jobs.c.id == job_id)
    )
    secret: str | None = (await conn.execute(stmt)).scalar_one_or_none()
    return secret


async def has_gone(conn: AsyncConnection, job_id: uuid.UUID) -> bool:
    """Whether the receiver answered `410 Gone` to any message of this job."""
    stmt = select(exists().where(deliveries.c.job_id == job_id, deliveries.c.outcome == GONE))
    return bool((await conn.execute(stmt)).scalar_one())


async def finish_attempt(
    conn: AsyncConnection,
    delivery_id: int,
    *,
    outcome: str,
    status_code: int | None,
    error: str | None,
    duration_ms: float | None,
    retry_in_seconds: float | None,
) -> DeliveryRow | None:
    """Record how a claimed attempt ended; None if it was not ours to finish."""
    stmt = (
        update(deliveries)
        .where(deliveries.c.id == delivery_id, deliveries.c.outcome == SENDING)
        .values(
            outcome=outcome,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
            next_attempt_at=(
                seconds_from_now(retry_in_seconds) if retry_in_seconds is not None else None
            ),
        )
        .returning(*deliveries.c)
    )
    return (await conn.execute(stmt)).first()


async def insert_retry(conn: AsyncConnection, previous: DeliveryRow) -> int | None:
    """The next attempt of the same message (same webhook-id), due when `previous` says."""
    stmt = (
        pg_insert(deliveries)
        .values(
            job_id=previous.job_id,
            webhook_id=previous.webhook_id,
            event_type=previous.event_type,
            url=previous.url,
            attempt=previous.attempt + 1,
            outcome=PENDING,
            payload=previous.payload,
            next_attempt_at=previous.next_attempt_at,
        )
        .on_conflict_do_nothing(index_elements=[deliveries.c.webhook_id, deliveries.c.attempt])
        .returning(deliveries.c.id)
    )
    inserted: int | None = (await conn.execute(stmt)).scalar_one_or_none()
    return inserted


async def skip_pending_for_job(conn: AsyncConnection, job_id: uuid.UUID, reason: str) -> int:
    stmt = (
        update(deliveries)
        .where(deliveries.c.job_id == job_id, deliveries.c.outcome == PENDING)
        .values(outcome=SKIPPED, error=reason, next_attempt_at=None, attempted_at=func.now())
    )
    return int((await conn.execute(stmt)).rowcount)


async def list_for_job(
    conn: AsyncConnection, job_id: uuid.UUID, *, limit: int = 1000
) -> Sequence[DeliveryRow]:
    stmt = (
        select(*deliveries.c)
        .where(deliveries.c.job_id == job_id)
        .order_by(deliveries.c.id)
        .limit(limit)
    )
    return (await conn.execute(stmt)).all()


async def due_pending(
    conn: AsyncConnection, *, overdue_seconds: float, limit: int = 500
) -> list[int]:
    """Pending attempts that should have been sent a while ago (their task may be lost)."""
    stmt = (
        select(deliveries.c.id)
        .where(
            deliveries.c.outcome == PENDING,
            deliveries.c.next_attempt_at < seconds_from_now(-overdue_seconds),
        )
        .order_by(deliveries.c.next_attempt_at)
        .limit(limit)
    )
    return [int(i) for i in (await conn.execute(stmt)).scalars()]


async def stale_sending(
    conn: AsyncConnection, *, older_than_seconds: float, limit: int = 500
) -> list[int]:
    """Attempts claimed so long ago that their worker must have died while sending."""
    stmt = (
        select(deliveries.c.id)
        .where(
            deliveries.c.outcome == SENDING,
            deliveries.c.attempted_at < seconds_from_now(-older_than_seconds),
        )
        .limit(limit)
    )
    return [int(i) for i in (await conn.execute(stmt)).scalars()]
