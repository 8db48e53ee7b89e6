"""Jobs as users see them: submit, read, list, cancel, retry, follow.

Ownership: a user sees only its own jobs; another user's job is "not found", never "forbidden".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from jobrelay import broadcast, ratelimit
from jobrelay.db import batch as batch_db
from jobrelay.db import jobs as jobs_db
from jobrelay.db.jobs import JobRow
from jobrelay.errors import Conflict, Forbidden, NotFound, Unprocessable
from jobrelay.jobs import lifecycle, submits
from jobrelay.jobs.cursor import decode_cursor, encode_cursor
from jobrelay.jobs.schemas import EventList, EventOut, JobCreate, JobOut, JobPage
from jobrelay.jobs.states import JobStatus, is_terminal
from jobrelay.kinds import KINDS, KindSpec
from jobrelay.services import Services
from jobrelay.tx import transaction
from jobrelay.users import service as users_service
from jobrelay.users.service import Caller
from jobrelay.validation import error_details, find_nul
from jobrelay.webhooks import urls as webhook_urls

IDEMPOTENCY_LOCK = 2


@dataclass(frozen=True)
class Submitted:
    job: JobOut
    replayed: bool


def request_hash(body: JobCreate, owner_id: int) -> str:
    canonical = json.dumps(
        {"owner": owner_id, **body.model_dump(mode="json")}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def kind_spec(kind: str, *, loc: tuple[str, ...] = ("body", "kind")) -> KindSpec:
    """The registered kind, or `422 unknown_kind` listing the ones there are."""
    spec = KINDS.get(kind)
    if spec is None:
        known = ", ".join(KINDS)
        raise Unprocessable(
            f"There is no job kind {kind!r}; the kinds are: {known}.",
            code="unknown_kind",
            details=[
                {
                    "loc": list(loc),
                    "msg": f"unknown kind; expected one of: {known}",
                    "type": "unknown_kind",
                }
            ],
        )
    return spec


def _validated_input(body: JobCreate) -> dict[str, Any]:
    spec = kind_spec(body.kind)
    nul_at = find_nul({"input": body.input, "metadata": body.metadata})
    if nul_at is not None:
        raise Unprocessable(
            "Text may not contain NUL (\\u0000) characters.",
            code="invalid_characters",
            details=[{"loc": ["body", *nul_at], "msg": "NUL character", "type": "value_error"}],
        )
    try:
        model = spec.input_model.model_validate(body.input)
    except ValidationError as exc:
        raise Unprocessable(
            f"The input is not valid for a {body.kind} job.",
            code="invalid_input",
            details=error_details(exc, ("body", "input")),
        ) from exc
    return model.model_dump(mode="json")


async def _owner_for(services: Services, caller: Caller, body: JobCreate) -> int:
    if body.user_id is None or body.user_id == caller.id:
        return caller.id
    if not caller.is_admin:
        raise Forbidden("Only an admin may submit on behalf of another user.", code="admin_only")
    if not await users_service.user_exists(services, body.user_id):
        raise Unprocessable(
            f"There is no user {body.user_id}.",
            code="unknown_user",
            details=[{"loc": ["body", "user_id"], "msg": "unknown user", "type": "value_error"}],
        )
    return body.user_id


async def submit(
    services: Services, caller: Caller, body: JobCreate, *, idempotency_key: str | None
) -> Submitted:
    settings = services.settings
    job_input = _validated_input(body)
    if body.webhook is not None:
        await webhook_urls.check_webhook_url(body.webhook, settings)
    owner_id = await _owner_for(services, caller, body)
    if not caller.is_admin:
        await ratelimit.check_submission_rate(
            services.redis, user_id=caller.id, limit=settings.rate_limit_per_minute
        )
    digest = request_hash(body, owner_id) if idempotency_key else None
    job_id = uuid.uuid4()
    deadline = body.deadline_seconds or kind_spec(body.kind).deadline_seconds(settings)
    if idempotency_key is None:
        changed = await submits.groups_of(services, lifecycle.QUEUED_MESSAGE).submit(
            batch_db.NewJob(
                id=job_id,
                kind=body.kind,
                user_id=owner_id,
                input=job_input,
                metadata=body.metadata,
                webhook=body.webhook,
                webhook_events_filter=body.webhook_events_filter,
                deadline_seconds=deadline,
                max_attempts=settings.max_attempts,
                submitted_by=caller.id,
            )
        )
        return Submitted(JobOut.from_row(changed.job), replayed=False)
    async with transaction(services) as tx:
        if idempotency_key is not None:
            existing = await _replay(tx.conn, owner_id, idempotency_key, digest, settings)
            if existing is not None:
                return Submitted(JobOut.from_row(existing), replayed=True)
        changed = await jobs_db.insert_job(
            tx.conn,
            {
                "id": job_id,
                "kind": body.kind,
                "status": JobStatus.QUEUED.value,
                "progress": 0,
                "message": lifecycle.QUEUED_MESSAGE,
                "user_id": owner_id,
                "input": job_input,
                "metadata": body.metadata,
                "webhook": body.webhook,
                "webhook_events_filter": body.webhook_events_filter,
                "idempotency_key": idempotency_key,
                "request_hash": digest,
                "deadline_seconds": deadline,
                "max_attempts": settings.max_attempts,
                "submitted_by": caller.id,
            },
        )
        row = tx.record(changed)
        # Enqueued before commit: a Redis outage turns into a 503 with nothing stored, and a
        # worker that is faster than the commit simply retries the claim.
        await services.queue.enqueue_job(job_id, kind=body.kind)
    return Submitted(JobOut.from_row(row), replayed=False)


async def _replay(
    conn: Any, owner_id: int, key: str, digest: str | None, settings: Any
) -> JobRow | None:
    if not await jobs_db.try_lock(conn, IDEMPOTENCY_LOCK, f"{owner_id}:{key}"):
        raise Conflict(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            code="idempotency_key_in_flight",
        )
    since = await jobs_db.now(conn) - dt.timedelta(seconds=settings.idempotency_ttl_seconds)
    existing = await jobs_db.find_by_idempotency_key(conn, user_id=owner_id, key=key, since=since)
    if existing is None:
        return None
    if existing.request_hash != digest:
        raise Unprocessable(
            "This Idempotency-Key was already used with a different request body.",
            code="idempotency_key_reused",
        )
    return existing


async def _visible_row(services: Services, caller: Caller, job_id: uuid.UUID) -> JobRow:
    row = await jobs_db.read_job(services.read_pool, job_id)
    if row is None or (not caller.is_admin and row.user_id != caller.id):
        raise NotFound(f"No job {job_id}.", code="job_not_found")
    return row


async def get_job(services: Services, caller: Caller, job_id: uuid.UUID) -> JobOut:
    return JobOut.from_row(await _visible_row(services, caller, job_id))


async def ensure_visible(services: Services, caller: Caller, job_id: uuid.UUID) -> JobRow:
    """The job's row if the caller may see it; `NotFound` otherwise (no existence leak)."""
    return await _visible_row(services, caller, job_id)


async def list_jobs(
    services: Services,
    caller: Caller,
    *,
    kind: str | None,
    status: str | None,
    user_id: int | None,
    limit: int,
    cursor: str | None,
) -> JobPage:
    if kind is not None:
        kind_spec(kind, loc=("query", "kind"))
    if not caller.is_admin:
        if user_id is not None and user_id != caller.id:
            return JobPage(items=[], next_cursor=None)
        user_id = caller.id
    after = decode_cursor(cursor) if cursor else None
    async with services.reads.connect() as conn:
        rows = await jobs_db.list_jobs(
            conn, user_id=user_id, kind=kind, status=status, limit=limit + 1, after=after
        )
    items = [JobOut.from_row(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last.created_at, last.id)
    return JobPage(items=items, next_cursor=next_cursor)


async def cancel(services: Services, caller: Caller, job_id: uuid.UUID) -> JobOut:
    await _visible_row(services, caller, job_id)
    async with transaction(services) as tx:
        row = await lifecycle.move(
            tx,
            job_id,
            JobStatus.CANCELED,
            message="Canceled by request",
            data={"by_user_id": caller.id},
            max_running_per_user=services.settings.max_running_per_user,
        )
        if row is not None:
            tx.abort.append(job_id)
    if row is None:
        current = await _visible_row(services, caller, job_id)
        raise Conflict(
            f"The job is {current.status} and can no longer be canceled.",
            code="job_not_cancelable",
            details=[{"status": current.status}],
        )
    return JobOut.from_row(row)


async def retry(services: Services, caller: Caller, job_id: uuid.UUID) -> JobOut:
    """Queue a failed or canceled job again; `attempts` keeps counting across retries."""
    await _visible_row(services, caller, job_id)
    async with transaction(services) as tx:
        row = await lifecycle.move(
            tx,
            job_id,
            JobStatus.QUEUED,
            message=lifecycle.QUEUED_MESSAGE,
            values=lifecycle.requeue_values(services.settings.max_attempts),
            data={"by_user_id": caller.id, "retry": True},
        )
        if row is not None:
            tx.enqueue.append((job_id, row.kind))
    if row is None:
        current = await _visible_row(services, caller, job_id)
        raise Conflict(
            f"Only failed or canceled jobs can be retried; this one is {current.status}.",
            code="job_not_retryable",
            details=[{"status": current.status}],
        )
    return JobOut.from_row(row)


async def list_events(
    services: Services, caller: Caller, job_id: uuid.UUID, *, after_id: int = 0
) -> EventList:
    await _visible_row(services, caller, job_id)
    async with services.reads.connect() as conn:
        rows = await jobs_db.list_events(conn, job_id, after_id=after_id)
    return EventList(items=[EventOut.model_validate(r, from_attributes=True) for r in rows])


async def get_result(services: Services, caller: Caller, job_id: uuid.UUID) -> dict[str, Any]:
    row = await _visible_row(services, caller, job_id)
    if row.status != JobStatus.COMPLETED.value or row.result is None:
        raise Conflict(
            f"The job is {row.status}; its result exists once it is completed.",
            code="job_not_completed",
            details=[{"status": row.status}],
        )
    result: dict[str, Any] = row.result
    return result


async def wait_for_end(services: Services, job_id: uuid.UUID, *, seconds: float) -> JobRow | None:
    """Hold until the job is terminal or `seconds` pass; the terminal row, or None."""
    final: list[JobRow] = []

    async def finished() -> bool:
        row = await jobs_db.read_job(services.read_pool, job_id)
        if row is not None and is_terminal(row.status):
            final.append(row)
            return True
        return False

    await broadcast.wait_until(services.redis, job_id, timeout=seconds, done=finished)
    return final[-1] if final else None
