"""SQL for jobs and their events.

Every change of a job's status or progress goes through `change_job`, which updates the row and
appends the matching event in one statement, so the event log and the row never disagree.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    String,
    and_,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from jobrelay.db.models import job_events_table as events
from jobrelay.db.models import jobs_table as jobs
from jobrelay.db.models import users_table as users
from jobrelay.db.prepared import Parameters, statement
from jobrelay.db.reads import ReadPool, Record, record_class

# A job's row: from a SQLAlchemy connection, or from the read pool (`read_job`).
JobRow = Row[*tuple[Any, ...]] | Record
ACTIVE_STATUSES = ("queued", "processing")
TERMINAL_STATUSES = ("completed", "failed", "canceled")


@dataclass(frozen=True)
class EventSpec:
    """The event stored with a change; status and progress are read back from the updated row."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChangedJob:
    job: JobRow
    event: dict[str, Any]


def _event_from(row: JobRow) -> dict[str, Any]:
    return {
        "id": row.event_id,
        "job_id": row.id,
        "type": row.event_type,
        "status": row.status,
        "progress": row.progress,
        "message": row.message,
        "at": row.event_at,
        "data": row.event_data,
    }


async def insert_job(conn: AsyncConnection, values: dict[str, Any]) -> ChangedJob:
    """Insert a job and its first event in one round trip."""
    params = Parameters("insert_job", *sorted(values))
    for name, value in values.items():
        params.add(name, value)

    def build(p: Parameters) -> Any:
        named = {name: p.bind(name, jobs.c[name].type) for name in values}
        return _with_event(insert(jobs).values(**named).returning(*jobs.c).cte("new_job"))

    changed = await _run_with_event(conn, statement(params, build), params, EventSpec("status"))
    assert changed is not None  # an INSERT without conditions always returns its row
    return changed


async def change_job(
    conn: AsyncConnection,
    job_id: uuid.UUID,
    *,
    values: dict[str, Any],
    where: Iterable[ColumnElement[bool]] = (),
    event: EventSpec | None,
    without_input: bool = False,
) -> ChangedJob | JobRow | None:
    """Conditionally update one job; with `event`, append it. None when the condition failed.

    `without_input` returns `input` as NULL: a job's input can be large (1000 records), and a
    worker reporting progress has it already, so it need not travel back with every step."""
    conditions = list(where)
    params = Parameters("change_job", event is None, without_input, len(conditions))
    params.add("job_id", job_id)
    for name, value in values.items():
        params.add(f"set_{name}", value)
    for index, condition in enumerate(conditions):
        params.add(f"where_{index}", condition)

    def build(p: Parameters) -> Any:
        returned = [
            literal(None, type_=JSONB).label("input")
            if without_input and column is jobs.c.input
            else column
            for column in jobs.c
        ]
        stmt = (
            update(jobs)
            .where(
                jobs.c.id == p.bind("job_id", jobs.c.id.type),
                *(p.bind(f"where_{index}") for index in range(len(conditions))),
            )
            .values(
                updated_at=func.now(),
                **{name: p.bind(f"set_{name}", jobs.c[name].type) for name in values},
            )
            .returning(*returned)
        )
        return stmt if event is None else _with_event(stmt.cte("changed"))

    stmt = statement(params, build)
    if event is None:
        return (await conn.execute(stmt, params.values)).first()
    result: ChangedJob | None = await _run_with_event(conn, stmt, params, event)
    return result


async def _run_with_event(
    conn: AsyncConnection, stmt: Any, params: Parameters, event: EventSpec
) -> ChangedJob | None:
    values = {**params.values, "event_type": event.type, "event_data": event.data}
    row = (await conn.execute(stmt, values)).first()
    if row is None:
        return None
    return ChangedJob(job=row, event=_event_from(row))


def _with_event(source: Any) -> Any:
    """Select the changed row joined to the event appended for it (type and data bound as
    `event_type` and `event_data`); status and progress are read from the row."""
    new_event = (
        insert(events)
        .from_select(
            ["job_id", "type", "status", "progress", "message", "attempt", "data"],
            select(
                source.c.id,
                bindparam("event_type", type_=String()),
                source.c.status,
                source.c.progress,
                source.c.message,
                source.c.attempts,
                bindparam("event_data", type_=JSONB),
            ),
        )
        .returning(
            events.c.id.label("event_id"),
            events.c.at.label("event_at"),
            events.c.type.label("event_type"),
            events.c.data.label("event_data"),
        )
        .cte("new_event")
    )
    return select(source, new_event).select_from(source.join(new_event, true()))


_GET_JOB = select(*jobs.c).where(jobs.c.id == bindparam("job_id", type_=jobs.c.id.type))


async def get_job(conn: AsyncConnection, job_id: uuid.UUID) -> JobRow | None:
    return (await conn.execute(_GET_JOB, {"job_id": job_id})).first()


_READ_JOBS = (
    f"SELECT {', '.join(c.name for c in jobs.c)} FROM {jobs.name} WHERE id = ANY($1::uuid[])"
)
_JobRecord = record_class("JobRecord", (c.name for c in jobs.c))


async def read_job(pool: ReadPool, job_id: uuid.UUID) -> JobRow | None:
    """`get_job` on the read pool: the status poll's read, without SQLAlchemy's per-call CPU,
    made together with the other polls that arrive while one is in flight."""
    return await pool.fetch_grouped(_READ_JOBS, job_id, key_column="id", record=_JobRecord)


async def get_job_for_update(conn: AsyncConnection, job_id: uuid.UUID) -> JobRow | None:
    return (
        await conn.execute(select(*jobs.c).where(jobs.c.id == job_id).with_for_update())
    ).first()


async def find_by_idempotency_key(
    conn: AsyncConnection, *, user_id: int, key: str, since: dt.datetime
) -> JobRow | None:
    stmt = (
        select(*jobs.c)
        .where(
            jobs.c.user_id == user_id,
            jobs.c.idempotency_key == key,
            jobs.c.created_at > since,
        )
        .order_by(jobs.c.created_at.desc())
        .limit(1)
    )
    return (await conn.execute(stmt)).first()


async def try_lock(conn: AsyncConnection, namespace: int, key: str) -> bool:
    """A transaction-scoped advisory lock on (namespace, hash of key); False if someone holds it."""
    stmt = select(func.pg_try_advisory_xact_lock(namespace, func.hashtext(key)))
    return bool((await conn.execute(stmt)).scalar_one())


async def lock_user(conn: AsyncConnection, user_id: int) -> None:
    await conn.execute(select(func.pg_advisory_xact_lock(1, user_id)))


async def list_jobs(
    conn: AsyncConnection,
    *,
    user_id: int | None,
    kind: str | None,
    status: str | None,
    limit: int,
    after: tuple[dt.datetime, uuid.UUID] | None,
) -> Sequence[JobRow]:
    """Newest first, keyset-paginated on (created_at, id)."""
    stmt = select(*jobs.c).order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit)
    if user_id is not None:
        stmt = stmt.where(jobs.c.user_id == user_id)
    if kind is not None:
        stmt = stmt.where(jobs.c.kind == kind)
    if status is not None:
        stmt = stmt.where(jobs.c.status == status)
    if after is not None:
        stmt = stmt.where(tuple_(jobs.c.created_at, jobs.c.id) < tuple_(*after))
    return (await conn.execute(stmt)).all()


async def list_events(
    conn: AsyncConnection, job_id: uuid.UUID, *, after_id: int = 0, limit: int = 10_000
) -> Sequence[JobRow]:
    stmt = (
        select(*events.c)
        .where(events.c.job_id == job_id, events.c.id > after_id)
        .order_by(events.c.id)
        .limit(limit)
    )
    return (await conn.execute(stmt)).all()


async def get_user_role(conn: AsyncConnection, job_id: uuid.UUID) -> JobRow | None:
    stmt = (
        select(jobs.c.user_id, jobs.c.status, jobs.c.parked, users.c.role)
        .join(users, users.c.id == jobs.c.user_id)
        .where(jobs.c.id == job_id)
    )
    return (await conn.execute(stmt)).first()


async def count_running(conn: AsyncConnection, user_id: int) -> int:
    stmt = select(func.count()).where(jobs.c.user_id == user_id, jobs.c.status == "processing")
    return int((await conn.execute(stmt)).scalar_one())


async def unpark_next(
    conn: AsyncConnection, *, user_id: int, limit: int
) -> list[tuple[uuid.UUID, str]]:
    """Hand free running slots of a user to its oldest parked jobs; returns (id, kind) of the
    jobs to enqueue."""
    busy = (
        select(func.count())
        .where(
            jobs.c.user_id == user_id,
            or_(jobs.c.status == "processing", and_(jobs.c.status == "queued", ~jobs.c.parked)),
        )
        .scalar_subquery()
    )
    candidates = (
        select(jobs.c.id)
        .where(jobs.c.user_id == user_id, jobs.c.status == "queued", jobs.c.parked)
        .order_by(jobs.c.created_at, jobs.c.id)
        .limit(func.greatest(literal(limit) - busy, 0))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    stmt = (
        update(jobs)
        .where(jobs.c.id.in_(candidates))
        .values(parked=False, updated_at=func.now())
        .returning(jobs.c.id, jobs.c.kind)
    )
    return [(row.id, row.kind) for row in await conn.execute(stmt)]


async def users_with_parked_jobs(conn: AsyncConnection) -> list[int]:
    stmt = select(jobs.c.user_id).where(jobs.c.status == "queued", jobs.c.parked).distinct()
    return [int(u) for u in (await conn.execute(stmt)).scalars()]


async def dispatchable_job_ids(
    conn: AsyncConnection, *, older_than: dt.datetime
) -> list[uuid.UUID]:
    """Jobs a worker should hold: queued and not parked, or processing with an expired lease."""
    stmt = select(jobs.c.id).where(
        jobs.c.updated_at < older_than,
        or_(
            and_(jobs.c.status == "queued", ~jobs.c.parked),
            and_(jobs.c.status == "processing", jobs.c.lease_expires_at < func.now()),
        ),
    )
    return list((await conn.execute(stmt)).scalars())


async def overdue_job_ids(conn: AsyncConnection) -> list[uuid.UUID]:
    stmt = select(jobs.c.id).where(jobs.c.status == "processing", jobs.c.deadline_at < func.now())
    return list((await conn.execute(stmt)).scalars())


async def now(conn: AsyncConnection) -> dt.datetime:
    value: dt.datetime = (await conn.execute(text("SELECT now()"))).scalar_one()
    return value


# The expressions below are built once per argument and shared (SQLAlchemy expressions are
# immutable): a job change is made of them, and building them and their cache keys anew on
# every progress step cost more CPU than running the statement.


@lru_cache(maxsize=256)
def is_attempt(attempt: int) -> ColumnElement[bool]:
    """Fences writes to the attempt that made them: a superseded worker changes nothing."""
    return jobs.c.attempts == attempt


@lru_cache(maxsize=16)
def status_is(status: str) -> ColumnElement[bool]:
    return jobs.c.status == status


@lru_cache(maxsize=16)
def status_in(statuses: tuple[str, ...]) -> ColumnElement[bool]:
    return jobs.c.status.in_(statuses)


@lru_cache(maxsize=128)
def progress_at_least(progress: int) -> Any:
    """The stored progress, raised to `progress` (0-100) but never lowered."""
    return func.greatest(jobs.c.progress, max(0, min(100, progress)))


@cache
def now_expression() -> Any:
    return func.now()


@cache
def is_claimable() -> ColumnElement[bool]:
    """Queued and not parked, or processing under a lease that expired (its worker is gone)."""
    return or_(
        and_(jobs.c.status == "queued", ~jobs.c.parked),
        and_(jobs.c.status == "processing", jobs.c.lease_expires_at < func.now()),
    )


@cache
def has_attempts_left() -> ColumnElement[bool]:
    return jobs.c.attempts < jobs.c.max_attempts


@cache
def is_lease_expired() -> ColumnElement[bool]:
    return and_(jobs.c.status == "processing", jobs.c.lease_expires_at < func.now())


@lru_cache(maxsize=256)
def seconds_from_now(seconds: float) -> Any:
    return func.now() + func.make_interval(0, 0, 0, 0, 0, 0, seconds)


@cache
def next_attempt() -> Any:
    return jobs.c.attempts + 1


@cache
def started_at_or_now() -> Any:
    return func.coalesce(jobs.c.started_at, func.now())


@lru_cache(maxsize=16)
def deadline_or(seconds_expression: Any) -> Any:
    return func.coalesce(jobs.c.deadline_at, seconds_expression)


@cache
def deadline_from_job() -> Any:
    return func.now() + func.make_interval(0, 0, 0, 0, 0, 0, jobs.c.deadline_seconds)


async def renew_lease(
    conn: AsyncConnection, job_id: uuid.UUID, *, attempt: int, seconds: float
) -> bool:
    stmt = (
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.status == "processing", jobs.c.attempts == attempt)
        .values(lease_expires_at=seconds_from_now(seconds))
        .returning(jobs.c.id)
    )
    return (await conn.execute(stmt)).first() is not None


async def park(conn: AsyncConnection, job_id: uuid.UUID) -> bool:
    stmt = (
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.status == "queued", ~jobs.c.parked)
        .values(parked=True, updated_at=func.now())
        .returning(jobs.c.id)
    )
    return (await conn.execute(stmt)).first() is not None


async def stranded_jobs(conn: AsyncConnection, *, quiet_for_seconds: float) -> Sequence[JobRow]:
    """Jobs some worker should be holding, untouched for a while: queued and not parked, or
    processing under an expired lease. The reconciler checks these against Redis."""
    stmt = select(jobs.c.id, jobs.c.status, jobs.c.kind).where(
        jobs.c.updated_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, quiet_for_seconds),
        or_(
            and_(jobs.c.status == "queued", ~jobs.c.parked),
            and_(jobs.c.status == "processing", jobs.c.lease_expires_at < func.now()),
        ),
    )
    return (await conn.execute(stmt)).all()


def is_overdue() -> ColumnElement[bool]:
    return and_(jobs.c.status == "processing", jobs.c.deadline_at < func.now())
