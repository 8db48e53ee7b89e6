"""Set-based statements for the worker's write buffer: many jobs' claims, progress steps and
endings in a handful of statements, each `UPDATE … FROM unnest(…) RETURNING` joined to the
`INSERT … SELECT` of its events.

The statements are plain SQL sent through the driver (`exec_driver_sql`): they are fixed strings
with array parameters, so there is nothing for SQLAlchemy to build or cache, and the driver keeps
each one prepared. They hold no session state and take only transaction-scoped advisory locks,
so they run unchanged behind PgBouncer in transaction mode.

Every job write keeps the per-row guarantees of `jobs.change_job`: the attempt fence
(`status = 'processing' AND attempts = <attempt>`), progress never lowered, and each event
recording the row's status and progress right after it. A row that fails its fence is simply not
returned: the other jobs of the statement are unaffected.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from jobrelay.db.jobs import JobRow
from jobrelay.db.models import jobs_table

# The job's columns, `input` left out unless a progress webhook needs the whole job: a job's
# input can be 1000 records, and the worker holds it already.
_COLUMNS = [c.name for c in jobs_table.c if c.name != "input"]


def _job_columns(alias: str, *, input_when: str | None = None) -> str:
    names = [f"{alias}.{name}" for name in _COLUMNS]
    if input_when is None:
        names.append(f"{alias}.input")
    else:
        names.append(f"CASE WHEN {input_when} THEN {alias}.input END AS input")
    return ", ".join(names)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


async def current_xact(conn: AsyncConnection) -> int:
    """The transaction's id: after a failed COMMIT, `xact_committed` tells what became of it."""
    return int(
        (await conn.exec_driver_sql("SELECT pg_current_xact_id()::text::bigint")).scalar_one()
    )


async def xact_committed(conn: AsyncConnection, xid: int) -> bool | None:
    """True if that transaction committed, False if it aborted, None if it is still running."""
    status = (
        await conn.exec_driver_sql("SELECT pg_xact_status($1::text::xid8)", (str(xid),))
    ).scalar_one()
    if status == "committed":
        return True
    if status == "aborted":
        return False
    return None


# --- progress ---------------------------------------------------------------------------------

_PROGRESS = f"""
WITH r AS (
    SELECT * FROM unnest($1::uuid[], $2::int[], $3::int[], $4::text[], $5::text[])
        WITH ORDINALITY AS r(job_id, attempt, progress, message, data, ord)
),
last AS (
    SELECT DISTINCT ON (job_id) job_id, attempt, message,
           max(least(100, greatest(0, progress))) OVER (PARTITION BY job_id) AS top
    FROM r ORDER BY job_id, ord DESC
),
changed AS (
    UPDATE jobs j
    SET progress = greatest(j.progress, l.top), message = l.message,
        lease_expires_at = now() + make_interval(secs => $6), updated_at = now()
    FROM last l, jobs o
    WHERE j.id = l.job_id AND o.id = l.job_id
      AND j.status = 'processing' AND j.attempts = l.attempt
    RETURNING {_job_columns("j", input_when="j.webhook IS NOT NULL AND 'progress' = ANY(j.webhook_events_filter)")},
              o.progress AS before
),
ev AS (
    INSERT INTO job_events (job_id, type, status, progress, message, attempt, data)
    SELECT r.job_id, 'progress', c.status,
           greatest(c.before, max(least(100, greatest(0, r.progress)))
               OVER (PARTITION BY r.job_id ORDER BY r.ord)),
           r.message, c.attempts, r.data::jsonb
    FROM r JOIN changed c ON c.id = r.job_id
    ORDER BY r.ord
    RETURNING id, job_id, type, status, progress, message, at, data
)
SELECT c.*, ev.id AS event_id, ev.type AS event_type, ev.status AS event_status,
       ev.progress AS event_progress, ev.message AS event_message, ev.at AS event_at,
       ev.data AS event_data
FROM ev JOIN changed c ON c.id = ev.job_id
ORDER BY ev.id
"""


@dataclass(frozen=True)
class Step:
    job_id: uuid.UUID
    attempt: int
    progress: int
    message: str
    data: dict[str, Any] | None


@dataclass(frozen=True)
class StoredEvent:
    """An event written by a batch statement, with the job's row right after it."""

    job: JobRow
    event: dict[str, Any]


def _event(row: Any, *, type_: str | None = None) -> dict[str, Any]:
    return {
        "id": row.event_id,
        "job_id": row.id,
        "type": row.event_type if type_ is None else type_,
        "status": row.event_status,
        "progress": row.event_progress,
        "message": row.event_message,
        "at": row.event_at,
        "data": row.event_data,
    }


async def store_steps(
    conn: AsyncConnection, steps: Sequence[Step], *, lease_seconds: float
) -> list[StoredEvent]:
    """Store progress steps of many jobs (in the order given; a job's steps in its order) and
    renew their leases. Steps of a job that fails its fence are not stored or returned."""
    result = await conn.exec_driver_sql(
        _PROGRESS,
        (
            [s.job_id for s in steps],
            [s.attempt for s in steps],
            [s.progress for s in steps],
            [s.message for s in steps],
            [dumps(s.data or {}) for s in steps],
            float(lease_seconds),
        ),
    )
    return [StoredEvent(row, _event(row)) for row in result]


# --- endings ------------------------------------------------------------------------------------

_LOCK_FOR_ENDING = """
SELECT j.id, j.user_id, u.tokens,
       (j.status = 'processing' AND j.attempts = r.attempt) AS live
FROM unnest($1::uuid[], $2::int[]) AS r(job_id, attempt)
JOIN jobs j ON j.id = r.job_id
JOIN users u ON u.id = j.user_id
ORDER BY u.id, j.id
FOR NO KEY UPDATE OF j, u
"""


@dataclass(frozen=True)
class Locked:
    user_id: int
    tokens: int
    live: bool


async def lock_for_ending(
    conn: AsyncConnection, jobs: Sequence[tuple[uuid.UUID, int]]
) -> dict[uuid.UUID, Locked]:
    """Lock the rows of jobs about to end and of their owners (in one order, so two flushes
    cannot deadlock): the balances a token charge is checked against cannot change until commit.
    `NO KEY UPDATE`, the lock the updates take anyway: it does not block the key-share locks
    that inserting a job takes on its owner (a `FOR UPDATE` here deadlocked with submissions)."""
    result = await conn.exec_driver_sql(
        _LOCK_FOR_ENDING, ([j for j, _ in jobs], [a for _, a in jobs])
    )
    return {
        uuid.UUID(str(row.id)): Locked(int(row.user_id), int(row.tokens), bool(row.live))
        for row in result
    }


_END = f"""
WITH r AS (
    SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::bigint[])
        WITH ORDINALITY AS r(job_id, attempt, status, message, result, error, charge, ord)
),
done AS (
    UPDATE jobs j
    SET status = r.status, message = r.message,
        progress = CASE WHEN r.status = 'completed' THEN 100 ELSE j.progress END,
        result = CASE WHEN r.status = 'completed' THEN r.result::jsonb ELSE j.result END,
        error = r.error::jsonb,
        completed_at = now(), lease_expires_at = NULL, updated_at = now()
    FROM r
    WHERE j.id = r.job_id AND j.status = 'processing' AND j.attempts = r.attempt
    RETURNING {_job_columns("j")}, r.charge AS charge, r.ord AS ord
),
charged AS (
    UPDATE users u SET tokens = u.tokens - s.total
    FROM (SELECT user_id, sum(charge) AS total FROM done
          WHERE status = 'completed' AND charge > 0 GROUP BY user_id) s
    WHERE u.id = s.user_id
    RETURNING u.id
),
ev AS (
    INSERT INTO job_events (job_id, type, status, progress, message, attempt, data)
    SELECT id, 'status', status, progress, message, attempts, '{{}}'::jsonb
    FROM done ORDER BY ord
    RETURNING id, job_id, type, status, progress, message, at, data
)
SELECT d.*, ev.id AS event_id, ev.type AS event_type, ev.status AS event_status,
       ev.progress AS event_progress, ev.message AS event_message, ev.at AS event_at,
       ev.data AS event_data, (SELECT count(*) FROM charged) AS charged_users
FROM ev JOIN done d ON d.id = ev.job_id
ORDER BY ev.id
"""


@dataclass(frozen=True)
class Ending:
    job_id: uuid.UUID
    attempt: int
    status: str  # completed | failed
    message: str
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    charge: int = 0


async def end_jobs(conn: AsyncConnection, endings: Sequence[Ending]) -> list[StoredEvent]:
    """End processing jobs (completed with their token charges, or failed), each under its
    attempt fence; the owners' rows must be locked first (`lock_for_ending`)."""
    result = await conn.exec_driver_sql(
        _END,
        (
            [e.job_id for e in endings],
            [e.attempt for e in endings],
            [e.status for e in endings],
            [e.message for e in endings],
            [dumps(e.result or {}) for e in endings],
            [None if e.error is None else dumps(e.error) for e in endings],
            [e.charge if e.status == "completed" else 0 for e in endings],
        ),
    )
    return [StoredEvent(row, _event(row)) for row in result]


_UNPARK = """
UPDATE jobs SET parked = false, updated_at = now()
WHERE id IN (
    SELECT c.id FROM unnest($1::bigint[]) AS u(user_id)
    CROSS JOIN LATERAL (
        SELECT j.id FROM jobs j
        WHERE j.user_id = u.user_id AND j.status = 'queued' AND j.parked
        ORDER BY j.created_at, j.id
        LIMIT greatest($2 - (
            SELECT count(*) FROM jobs b
            WHERE b.user_id = u.user_id
              AND (b.status = 'processing' OR (b.status = 'queued' AND NOT b.parked))), 0)
        FOR UPDATE SKIP LOCKED
    ) c
)
RETURNING id, kind
"""


async def unpark(
    conn: AsyncConnection, user_ids: Sequence[int], *, limit: int
) -> list[tuple[uuid.UUID, str]]:
    """Hand the running slots these users have free to their oldest parked jobs (as
    `jobs.unpark_next`, for many users in one statement); (id, kind) of the jobs to enqueue."""
    result = await conn.exec_driver_sql(_UNPARK, (sorted(set(user_ids)), limit))
    return [(uuid.UUID(str(row.id)), str(row.kind)) for row in result]


# --- claims -------------------------------------------------------------------------------------

_LOCK_OWNERS = """
SELECT count(pg_advisory_xact_lock(1, s.user_id::int)) FROM (
    SELECT DISTINCT j.user_id FROM jobs j JOIN users u ON u.id = j.user_id
    WHERE j.id = ANY($1::uuid[]) AND j.status = 'queued' AND u.role <> 'admin'
    ORDER BY j.user_id
) s
"""

_CLAIM = f"""
WITH r AS (
    SELECT * FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS r(job_id, starts, ord)
),
cur AS (
    SELECT j.id, j.user_id, j.status, j.parked, j.kind, u.role, r.ord,
           u.tokens AS owner_tokens, u.subscription_expires_at AS owner_subscription_expires_at,
           (r.starts::jsonb -> j.kind) AS start,
           (j.status = 'processing' AND j.lease_expires_at < now()
            AND j.attempts >= j.max_attempts) AS exhausted
    FROM r JOIN jobs j ON j.id = r.job_id JOIN users u ON u.id = j.user_id
),
cand AS (
    SELECT id, user_id, row_number() OVER (PARTITION BY user_id ORDER BY ord) AS rank
    FROM cur
    WHERE status = 'queued' AND NOT parked AND role <> 'admin' AND start IS NOT NULL
),
running AS (
    SELECT b.user_id, count(*) AS n FROM jobs b
    WHERE b.status = 'processing' AND b.user_id IN (SELECT user_id FROM cand)
    GROUP BY b.user_id
),
over AS (
    SELECT c.id FROM cand c LEFT JOIN running ru ON ru.user_id = c.user_id
    WHERE coalesce(ru.n, 0) + c.rank > $3
),
parked AS (
    UPDATE jobs SET parked = true, updated_at = now()
    WHERE id IN (SELECT id FROM over) AND status = 'queued' AND NOT parked
    RETURNING id
),
claimed AS (
    UPDATE jobs j
    SET status = 'processing', attempts = j.attempts + 1,
        progress = (c.start ->> 0)::smallint, message = c.start ->> 1,
        started_at = coalesce(j.started_at, now()),
        deadline_at = coalesce(j.deadline_at, now() + make_interval(secs => j.deadline_seconds)),
        lease_expires_at = now() + make_interval(secs => $4), parked = false, updated_at = now()
    FROM cur c
    WHERE j.id = c.id AND c.start IS NOT NULL AND c.id NOT IN (SELECT id FROM over)
      AND ((j.status = 'queued' AND NOT j.parked)
           OR (j.status = 'processing' AND j.lease_expires_at < now()))
      AND j.attempts < j.max_attempts
    RETURNING {_job_columns("j")}
),
ev AS (
    INSERT INTO job_events (job_id, type, status, progress, message, attempt, data)
    SELECT id, 'status', status, progress, message, attempts, '{{"started": true}}'::jsonb
    FROM claimed
    RETURNING id, job_id, type, status, progress, message, at, data
)
SELECT r.job_id AS requested, cur.status AS was_status, cur.start IS NOT NULL AS known,
       coalesce(cur.exhausted, false) AS exhausted, p.id IS NOT NULL AS was_parked,
       cur.owner_tokens, cur.owner_subscription_expires_at, cl.*,
       ev.id AS event_id, ev.type AS event_type, ev.status AS event_status,
       ev.progress AS event_progress, ev.message AS event_message, ev.at AS event_at,
       ev.data AS event_data
FROM r
LEFT JOIN cur ON cur.id = r.job_id
LEFT JOIN parked p ON p.id = r.job_id
LEFT JOIN claimed cl ON cl.id = r.job_id
LEFT JOIN ev ON ev.job_id = r.job_id
ORDER BY r.ord
"""


@dataclass(frozen=True)
class ClaimRow:
    """What a claim found: `claimed` holds the job's row and its `started` event."""

    job_id: uuid.UUID
    found: bool
    known_kind: bool
    parked: bool
    exhausted: bool
    claimed: StoredEvent | None
    owner_tokens: int | None
    owner_subscription_expires_at: Any


async def claim_jobs(
    conn: AsyncConnection,
    requests: Sequence[tuple[uuid.UUID, str]],
    *,
    max_running_per_user: int,
    lease_seconds: float,
) -> list[ClaimRow]:
    """Claim many jobs for a new attempt each, in order. `requests` pairs a job id with the JSON
    map `{kind: [start progress, start message]}` of the kinds its worker runs; a job of another
    kind is left alone. The per-user running limit holds as in `runtime.claim`: the owners are
    locked first (transaction-scoped advisory locks, in user order), then counted; a job over
    the limit is parked. The ids must be distinct."""
    ids = [job_id for job_id, _ in requests]
    await conn.exec_driver_sql(_LOCK_OWNERS, (ids,))
    result = await conn.exec_driver_sql(
        _CLAIM,
        (ids, [starts for _, starts in requests], max_running_per_user, float(lease_seconds)),
    )
    rows: list[ClaimRow] = []
    for row in result:
        claimed = StoredEvent(row, _event(row)) if row.event_id is not None else None
        rows.append(
            ClaimRow(
                job_id=uuid.UUID(str(row.requested)),
                found=row.was_status is not None,
                known_kind=bool(row.known),
                parked=bool(row.was_parked),
                exhausted=bool(row.exhausted),
                claimed=claimed,
                owner_tokens=row.owner_tokens,
                owner_subscription_expires_at=row.owner_subscription_expires_at,
            )
        )
    return rows


# --- leases -------------------------------------------------------------------------------------

_RENEW = """
UPDATE jobs j SET lease_expires_at = now() + make_interval(secs => $3)
FROM unnest($1::uuid[], $2::int[]) AS r(job_id, attempt)
WHERE j.id = r.job_id AND j.status = 'processing' AND j.attempts = r.attempt
RETURNING j.id
"""


async def renew_leases(
    conn: AsyncConnection, jobs: Sequence[tuple[uuid.UUID, int]], *, seconds: float
) -> set[uuid.UUID]:
    """Renew the leases of every job a process runs, in one statement; the ids still ours."""
    result = await conn.exec_driver_sql(
        _RENEW, ([j for j, _ in jobs], [a for _, a in jobs], float(seconds))
    )
    return {uuid.UUID(str(row.id)) for row in result}


# --- submissions --------------------------------------------------------------------------------

_INSERT_JOBS = f"""
WITH r AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::text[],
                         $6::text[], $7::text[], $8::int[], $9::int[], $10::bigint[])
        WITH ORDINALITY AS r(id, kind, user_id, input, metadata, webhook, filter,
                             deadline_seconds, max_attempts, submitted_by, ord)
),
new AS (
    INSERT INTO jobs (id, kind, status, progress, message, user_id, input, metadata, webhook,
                      webhook_events_filter, idempotency_key, request_hash, deadline_seconds,
                      max_attempts, submitted_by)
    SELECT id, kind, 'queued', 0, $11, user_id, input::jsonb, metadata::jsonb, webhook,
           CASE WHEN filter IS NULL THEN NULL
                ELSE ARRAY(SELECT jsonb_array_elements_text(filter::jsonb))::varchar(16)[] END,
           NULL, NULL, deadline_seconds, max_attempts, submitted_by
    FROM r ORDER BY ord
    RETURNING {_job_columns("jobs")}
),
ev AS (
    INSERT INTO job_events (job_id, type, status, progress, message, attempt, data)
    SELECT id, 'status', status, progress, message, attempts, '{{}}'::jsonb FROM new
    RETURNING id, job_id, type, status, progress, message, at, data
)
SELECT new.*, ev.id AS event_id, ev.type AS event_type, ev.status AS event_status,
       ev.progress AS event_progress, ev.message AS event_message, ev.at AS event_at,
       ev.data AS event_data
FROM new JOIN ev ON ev.job_id = new.id
"""


@dataclass(frozen=True)
class NewJob:
    id: uuid.UUID
    kind: str
    user_id: int
    input: dict[str, Any]
    metadata: dict[str, Any]
    webhook: str | None
    webhook_events_filter: Sequence[str] | None
    deadline_seconds: int
    max_attempts: int
    submitted_by: int


async def insert_jobs(
    conn: AsyncConnection, new: Sequence[NewJob], *, message: str
) -> dict[uuid.UUID, StoredEvent]:
    """Insert queued jobs (without an idempotency key) and their first events in one statement."""
    result = await conn.exec_driver_sql(
        _INSERT_JOBS,
        (
            [j.id for j in new],
            [j.kind for j in new],
            [j.user_id for j in new],
            [dumps(j.input) for j in new],
            [dumps(j.metadata) for j in new],
            [j.webhook for j in new],
            [
                None if j.webhook_events_filter is None else dumps(list(j.webhook_events_filter))
                for j in new
            ],
            [j.deadline_seconds for j in new],
            [j.max_attempts for j in new],
            [j.submitted_by for j in new],
            message,
        ),
    )
    return {uuid.UUID(str(row.id)): StoredEvent(row, _event(row)) for row in result}
