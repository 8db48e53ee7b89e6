"""Receiving the generator's callbacks: authenticate, audit, and apply each one at most once.

Every callback is written to the `callbacks` table, whatever happens to it: accepted ones in
the transaction that applies them, refused ones (bad signature, bad body, late, unknown job)
in a transaction of their own, so nothing a generator sent is lost.

Callbacks for one job are applied one at a time under the job's row lock. The job's status
under that lock decides: a finished or canceled job answers `409` and changes nothing; a
resent message (same `webhook-id` as one already applied) gets the first answer again and
changes nothing; the result is handed to the delegated kind's result handler (the quiz's
stores its questions) and completes the job in the same transaction.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from jobrelay.callbacks.auth import TOKEN_HEADER, authenticate
from jobrelay.callbacks.bodies import CallbackEnvelope, FailureCallback, ProgressCallback
from jobrelay.db import callbacks as callbacks_db
from jobrelay.db import jobs as jobs_db
from jobrelay.db.jobs import JobRow
from jobrelay.errors import AppError, Conflict, NotFound, Unprocessable
from jobrelay.jobs import lifecycle
from jobrelay.jobs.states import JobStatus
from jobrelay.kinds import KINDS
from jobrelay.kinds.delegated import CallbackContext, Delegation
from jobrelay.services import Services
from jobrelay.tx import Tx, transaction
from jobrelay.validation import error_details, find_nul

__all__ = ["Incoming", "Reply", "list_for_job", "receive"]

# The original AI worker's route serves the delegated kinds that use the generator's secret.
ORIGINAL_ROUTE_SECRET = "generator_secret"

logger = logging.getLogger(__name__)

_AUDITED_HEADERS = (
    "content-type",
    "content-length",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-forwarded-for",
)


@dataclass(frozen=True)
class ResultBody:
    """A result callback: its envelope, and what the kind's validation made of the body."""

    envelope: CallbackEnvelope
    value: Any

    @property
    def worker_task_id(self) -> str | None:
        return self.envelope.worker_task_id

    @property
    def user_id(self) -> int | None:
        return self.envelope.user_id


CallbackBody = ProgressCallback | ResultBody | FailureCallback


@dataclass(frozen=True)
class Incoming:
    """One received request: `job_ref` is the path's job id, None on the original route."""

    route: str
    headers: Mapping[str, str]
    body: bytes
    job_ref: str | None


@dataclass(frozen=True)
class Reply:
    status_code: int
    body: dict[str, Any]


@dataclass
class _Audit:
    """What is known so far about a callback, written once its outcome is decided."""

    incoming: Incoming
    job_id: uuid.UUID | None = None
    webhook_id: str | None = None
    kind: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self, *, outcome: str, status_code: int, applied: bool) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "route": self.incoming.route[:200],
            "webhook_id": self.webhook_id[:255] if self.webhook_id else None,
            "kind": self.kind,
            "headers": _audited_headers(self.incoming.headers),
            "body": _storable_text(self.incoming.body),
            "outcome": outcome,
            "status_code": status_code,
            "applied": applied,
        }


class _AlreadyApplied(Exception):
    """Another request applied this webhook-id first; roll back and answer as a resend."""


async def receive(services: Services, incoming: Incoming) -> Reply:
    """Authenticate, parse, apply; every outcome is audited. Raises `AppError` to refuse."""
    audit = _Audit(incoming, job_id=_path_job_id(incoming))
    try:
        delegation = await _path_delegation(services, audit.job_id)
        auth = authenticate(
            services.settings,
            incoming.headers,
            incoming.body,
            secrets=delegation.secrets(services.settings) if delegation else None,
            token=delegation.token(services.settings) if delegation else None,
        )
        audit.webhook_id = auth.webhook_id
        payload = _load(incoming.body)
        audit.kind = _kind_of(payload)
        job_id, delegation = await _resolve_job(services, incoming, payload, delegation)
        audit.job_id = job_id
        body = _parse(payload, delegation)
        try:
            return await _apply(services, audit, job_id, body, delegation)
        except _AlreadyApplied:
            return await _replay_reply(services, audit, job_id, delegation)
    except AppError as exc:
        await _record_refusal(services, audit, exc)
        raise


def _delegation_of(kind: str | None) -> Delegation | None:
    spec = KINDS.get(kind) if kind is not None else None
    return spec.delegation if spec is not None else None


async def _path_delegation(services: Services, job_id: uuid.UUID | None) -> Delegation | None:
    """The delegated kind of the job a path names: its secret verifies the callback."""
    if job_id is None:
        return None
    async with services.reads.connect() as conn:
        kind = await callbacks_db.job_kind(conn, job_id)
    return _delegation_of(kind)


async def list_for_job(services: Services, job_id: uuid.UUID) -> list[dict[str, Any]]:
    """The audit trail of one job, oldest first (visibility is checked by the caller)."""
    async with services.engine.connect() as conn:
        rows = await callbacks_db.list_for_job(conn, job_id)
    return [
        {
            "id": row.id,
            "route": row.route,
            "webhook_id": row.webhook_id,
            "kind": row.kind,
            "outcome": row.outcome,
            "status_code": row.status_code,
            "applied": row.applied,
            "received_at": row.received_at,
            "headers": row.headers,
            "body": row.body,
        }
        for row in rows
    ]


def _load(raw: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unprocessable("The callback body is not valid JSON.", code="invalid_json") from exc
    if not isinstance(payload, dict):
        raise Unprocessable("The callback body must be a JSON object.", code="invalid_json")
    nul_at = find_nul(payload)
    if nul_at is not None:
        raise Unprocessable(
            "Text may not contain NUL (\\u0000) characters.",
            code="invalid_characters",
            details=[{"loc": ["body", *nul_at], "msg": "NUL character", "type": "value_error"}],
        )
    return payload


def _kind_of(payload: dict[str, Any]) -> str:
    """Progress and failure have a status of their own; anything else is a result."""
    status = payload.get("status")
    if status == "processing":
        return "progress"
    if status == "failed":
        return "failure"
    return "result"


def _parse(payload: dict[str, Any], delegation: Delegation | None) -> CallbackBody:
    """Validate the body: progress and failure as every kind has them, a result with the
    delegated kind's own model and checks."""
    shape = _kind_of(payload)
    try:
        if shape == "progress":
            return ProgressCallback.model_validate(payload)
        if shape == "failure":
            return FailureCallback.model_validate(payload)
        envelope = CallbackEnvelope.model_validate(payload)
        if delegation is None:
            return ResultBody(envelope, payload)
        value = delegation.result_model.model_validate(payload)
    except ValidationError as exc:
        raise Unprocessable(
            "The callback body is not valid: a callback is progress ({status: processing, "
            "progress, message}), a failure ({status: failed, error}) or the kind's result.",
            code="invalid_callback",
            details=error_details(exc, ("body",)),
        ) from exc
    if delegation.result_check is not None:
        value = delegation.result_check(value)
    return ResultBody(envelope, value)


def _path_job_id(incoming: Incoming) -> uuid.UUID | None:
    if incoming.job_ref is None:
        return None
    try:
        return uuid.UUID(incoming.job_ref)
    except ValueError:
        return None


async def _resolve_job(
    services: Services,
    incoming: Incoming,
    payload: dict[str, Any],
    delegation: Delegation | None,
) -> tuple[uuid.UUID, Delegation | None]:
    if incoming.job_ref is not None:
        job_id = _path_job_id(incoming)
        if job_id is None:
            raise NotFound(f"No job {incoming.job_ref}.", code="job_not_found")
        return job_id, delegation
    try:
        task_id = CallbackEnvelope.model_validate(payload).worker_task_id
    except ValidationError as exc:
        raise Unprocessable(
            "The callback body is not valid.",
            code="invalid_callback",
            details=error_details(exc, ("body",)),
        ) from exc
    if task_id is None:
        raise Unprocessable(
            "worker_task_id is required on this route: it names the task the generator "
            "returned from /generate.",
            code="invalid_callback",
            details=[
                {"loc": ["body", "worker_task_id"], "msg": "Field required", "type": "missing"}
            ],
        )
    kinds = [
        spec.name
        for spec in KINDS.values()
        if spec.delegation is not None and spec.delegation.secret_setting == ORIGINAL_ROUTE_SECRET
    ]
    async with services.engine.connect() as conn:
        job_id = await callbacks_db.find_job_id_by_task(conn, task_id, kinds)
        kind = await callbacks_db.job_kind(conn, job_id) if job_id is not None else None
    if job_id is None:
        raise NotFound(f"No delegated job has the task id {task_id}.", code="job_not_found")
    return job_id, _delegation_of(kind)


async def _apply(
    services: Services,
    audit: _Audit,
    job_id: uuid.UUID,
    body: CallbackBody,
    delegation: Delegation | None,
) -> Reply:
    async with transaction(services) as tx:
        job = await jobs_db.get_job_for_update(tx.conn, job_id)
        if job is None or delegation is None or _delegation_of(job.kind) is not delegation:
            raise NotFound(
                f"No job {job_id} waits for an external worker's callback.",
                code="job_not_found",
            )
        if audit.webhook_id is not None and await callbacks_db.applied_with_webhook_id(
            tx.conn, audit.webhook_id
        ):
            raise _AlreadyApplied
        _check_acceptable(job, body)
        if isinstance(body, ResultBody):
            reply = await _complete(services, tx, job, body, delegation)
        elif isinstance(body, FailureCallback):
            reply = await _fail(services, tx, job, body)
        else:
            reply = await _progress(tx, job, body)
        recorded = await callbacks_db.record(
            tx.conn, audit.row(outcome="applied", status_code=reply.status_code, applied=True)
        )
        if recorded is None:
            raise _AlreadyApplied
    return reply


def _not_processing(job: JobRow) -> Conflict:
    return Conflict(
        f"The job is {job.status}; it takes no more callbacks.",
        code="job_finished" if job.status != JobStatus.QUEUED.value else "job_not_started",
        details=[{"status": job.status}],
    )


def _check_acceptable(job: JobRow, body: CallbackBody) -> None:
    if job.status != JobStatus.PROCESSING.value:
        raise _not_processing(job)
    task_id = body.worker_task_id
    if task_id is not None and job.external_id and task_id not in (job.external_id, str(job.id)):
        raise Conflict(
            f"Task {task_id} is not the job's current generator task ({job.external_id}); "
            "it belongs to an earlier attempt.",
            code="stale_task",
        )
    if body.user_id is not None and body.user_id != job.user_id:
        raise Unprocessable(
            f"user_id {body.user_id} is not the owner of this job.",
            code="user_mismatch",
            details=[{"loc": ["body", "user_id"], "msg": "not the job's owner", "type": "value"}],
        )


async def _progress(tx: Tx, job: JobRow, body: ProgressCallback) -> Reply:
    row = await lifecycle.report_progress(
        tx,
        job.id,
        progress=body.progress,
        message=body.message or f"Working ({body.progress}%)...",
        values=_external_id(job, body),
        data={"source": "callback"},
    )
    if row is None:
        raise _not_processing(job)
    return Reply(
        200, {"status": "ok", "progress": int(row.progress), "task_id": _task_of(job, body)}
    )


async def _fail(services: Services, tx: Tx, job: JobRow, body: FailureCallback) -> Reply:
    failed = await lifecycle.move(
        tx,
        job.id,
        JobStatus.FAILED,
        message="The external worker could not complete the job.",
        values={
            "error": {"code": "generator_failed", "message": body.error},
            **_external_id(job, body),
        },
        data={"source": "callback"},
        max_running_per_user=services.settings.max_running_per_user,
    )
    if failed is None:
        raise _not_processing(job)
    return Reply(200, {"status": "ok", "task_id": _task_of(job, body), "user_id": job.user_id})


async def _complete(
    services: Services, tx: Tx, job: JobRow, body: ResultBody, delegation: Delegation
) -> Reply:
    task_id = _task_of(job, body)
    context = CallbackContext(conn=tx.conn, job=job, task_id=task_id, settings=services.settings)
    delivered = await delegation.result_handler(context, body.value)
    completed = await lifecycle.move(
        tx,
        job.id,
        JobStatus.COMPLETED,
        message=delivered.message,
        values={
            "result": delivered.result,
            "progress": 100,
            "error": None,
            **_external_id(job, body),
        },
        data={"source": "callback", **delivered.event_data},
        max_running_per_user=services.settings.max_running_per_user,
    )
    if completed is None:
        raise _not_processing(job)
    return Reply(
        201, {"status": "ok", **delivered.reply, "task_id": task_id, "user_id": job.user_id}
    )


def _external_id(job: JobRow, body: CallbackBody) -> dict[str, Any]:
    """A callback that beats the worker's hand-off still records the generator's task id."""
    if job.external_id or not body.worker_task_id or body.worker_task_id == str(job.id):
        return {}
    return {"external_id": body.worker_task_id}


def _task_of(job: JobRow, body: CallbackBody) -> str:
    return str(body.worker_task_id or job.external_id or job.id)


async def _replay_reply(
    services: Services, audit: _Audit, job_id: uuid.UUID, delegation: Delegation | None
) -> Reply:
    """The answer to a resend of an applied message: what the first delivery got, no effect."""
    async with services.engine.connect() as conn:
        job = await jobs_db.get_job(conn, job_id)
    if job is None:
        raise NotFound(f"No job {job_id}.", code="job_not_found")
    task_id = str(job.external_id or job.id)
    if audit.kind == "result":
        extra = delegation.replay_reply(job) if delegation and delegation.replay_reply else {}
        reply = Reply(
            201,
            {
                "status": "ok",
                **extra,
                "task_id": task_id,
                "user_id": job.user_id,
                "replayed": True,
            },
        )
    else:
        reply = Reply(200, {"status": "ok", "task_id": task_id, "replayed": True})
    async with transaction(services) as tx:
        await callbacks_db.record(
            tx.conn, audit.row(outcome="replayed", status_code=reply.status_code, applied=False)
        )
    return reply


async def _record_refusal(services: Services, audit: _Audit, exc: AppError) -> None:
    try:
        async with transaction(services) as tx:
            await callbacks_db.record(
                tx.conn,
                audit.row(outcome=exc.code, status_code=exc.status_code, applied=False),
            )
    except Exception:
        logger.exception("could not audit a refused callback on %s", audit.incoming.route)


def _audited_headers(headers: Mapping[str, str]) -> dict[str, str]:
    lowered = {name.lower(): value for name, value in headers.items()}
    kept = {name: lowered[name][:500] for name in _AUDITED_HEADERS if name in lowered}
    if TOKEN_HEADER in lowered:
        kept[TOKEN_HEADER] = "[redacted]"
    return kept


def _storable_text(body: bytes) -> str:
    """The raw body as text PostgreSQL accepts (no NUL), undecodable bytes replaced."""
    return body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
