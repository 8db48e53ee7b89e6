"""Receiving the generator's callbacks: authenticate, audit, and apply each one at most once.

Every callback is written to the `callbacks` table, whatever happens to it: accepted ones in
the transaction that applies them, refused ones (bad signature, bad body, late, unknown job)
in a transaction of their own, so nothing a generator sent is lost.

Callbacks for one job are applied one at a time under the job's row lock. The job's status
under that lock decides: a finished or canceled job answers `409` and changes nothing; a
resent message (same `webhook-id` as one already applied) gets the first answer again and
changes nothing; the result stores its questions and completes the job in one transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from jobrelay.callbacks.auth import TOKEN_HEADER, authenticate
from jobrelay.db import callbacks as callbacks_db
from jobrelay.db import jobs as jobs_db
from jobrelay.db import questions as questions_db
from jobrelay.db.jobs import JobRow
from jobrelay.errors import AppError, Conflict, NotFound, Unprocessable
from jobrelay.jobs import lifecycle
from jobrelay.jobs.states import JobStatus
from jobrelay.quizzes.questions import validate_questions
from jobrelay.quizzes.schemas import (
    FailureCallback,
    ProgressCallback,
    QuestionIn,
    ResultCallback,
)
from jobrelay.quizzes.tasks import KIND as QUIZ_KIND
from jobrelay.services import Services
from jobrelay.tx import Tx, transaction
from jobrelay.validation import error_details, find_nul

__all__ = ["Incoming", "Reply", "list_for_job", "receive"]

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

CallbackBody = ProgressCallback | ResultCallback | FailureCallback


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
        auth = authenticate(services.settings, incoming.headers, incoming.body)
        audit.webhook_id = auth.webhook_id
        body = _parse(incoming.body)
        audit.kind = _kind_of(body)
        job_id = await _resolve_job(services, incoming, body)
        audit.job_id = job_id
        questions = _validated_questions(body) if isinstance(body, ResultCallback) else []
        try:
            return await _apply(services, audit, job_id, body, questions)
        except _AlreadyApplied:
            return await _replay_reply(services, audit, job_id)
    except AppError as exc:
        await _record_refusal(services, audit, exc)
        raise


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


def _parse(raw: bytes) -> CallbackBody:
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
    model: type[ProgressCallback] | type[ResultCallback] | type[FailureCallback]
    if "questions" in payload:
        model = ResultCallback
    elif payload.get("status") == "processing":
        model = ProgressCallback
    elif payload.get("status") == "failed":
        model = FailureCallback
    else:
        raise Unprocessable(
            "A callback is progress ({status: processing, progress, message}), a result "
            "({worker_task_id, user_id, questions, meta}) or a failure ({status: failed, error}).",
            code="unknown_callback",
        )
    try:
        parsed = model.model_validate(payload)
    except ValidationError as exc:
        raise Unprocessable(
            "The callback body is not valid.",
            code="invalid_callback",
            details=error_details(exc, ("body",)),
        ) from exc
    return parsed


def _kind_of(body: CallbackBody) -> str:
    if isinstance(body, ResultCallback):
        return "result"
    if isinstance(body, FailureCallback):
        return "failure"
    return "progress"


def _validated_questions(body: ResultCallback) -> list[QuestionIn]:
    valid, problems = validate_questions(body.questions)
    if problems:
        raise Unprocessable(
            f"{len(problems)} of {len(body.questions)} questions are not valid; nothing was "
            "saved. Fix them and send the whole result again.",
            code="invalid_questions",
            details=[{"loc": ["body", "questions", p["index"]], **p} for p in problems],
        )
    return valid


def _path_job_id(incoming: Incoming) -> uuid.UUID | None:
    if incoming.job_ref is None:
        return None
    try:
        return uuid.UUID(incoming.job_ref)
    except ValueError:
        return None


async def _resolve_job(services: Services, incoming: Incoming, body: CallbackBody) -> uuid.UUID:
    if incoming.job_ref is not None:
        job_id = _path_job_id(incoming)
        if job_id is None:
            raise NotFound(f"No job {incoming.job_ref}.", code="job_not_found")
        return job_id
    task_id = body.worker_task_id
    if task_id is None:
        raise Unprocessable(
            "worker_task_id is required on this route: it names the task the generator "
            "returned from /generate.",
            code="invalid_callback",
            details=[
                {"loc": ["body", "worker_task_id"], "msg": "Field required", "type": "missing"}
            ],
        )
    async with services.engine.connect() as conn:
        job_id = await callbacks_db.find_job_id_by_task(conn, task_id, QUIZ_KIND)
    if job_id is None:
        raise NotFound(f"No quiz job has the task id {task_id}.", code="job_not_found")
    return job_id


async def _apply(
    services: Services,
    audit: _Audit,
    job_id: uuid.UUID,
    body: CallbackBody,
    questions: list[QuestionIn],
) -> Reply:
    async with transaction(services) as tx:
        job = await jobs_db.get_job_for_update(tx.conn, job_id)
        if job is None or job.kind != QUIZ_KIND:
            raise NotFound(f"No quiz job {job_id}.", code="job_not_found")
        if audit.webhook_id is not None and await callbacks_db.applied_with_webhook_id(
            tx.conn, audit.webhook_id
        ):
            raise _AlreadyApplied
        _check_acceptable(job, body)
        if isinstance(body, ResultCallback):
            reply = await _complete(services, tx, job, body, questions)
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
        message=body.message or f"Generating questions ({body.progress}%)...",
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
        message="The generator could not produce the quiz.",
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
    services: Services, tx: Tx, job: JobRow, body: ResultCallback, questions: list[QuestionIn]
) -> Reply:
    rows = [
        {
            "job_id": job.id,
            "user_id": job.user_id,
            "position": position,
            "sentence": question.sentence,
            "option_a": question.options.A,
            "option_b": question.options.B,
            "option_c": question.options.C,
            "option_d": question.options.D,
            "correct_answer": question.correct_answer,
            "explanation": question.explanation,
            "type": question.type,
            "difficulty": question.difficulty,
            "score": question.score,
            "context": question.context,
        }
        for position, question in enumerate(questions, start=1)
    ]
    await questions_db.insert_questions(tx.conn, rows)
    stored = await questions_db.list_for_job(tx.conn, job.id)
    result = {
        "questions": [question_out(row) for row in stored],
        "questions_created": len(stored),
        "processing_time_sec": _processing_time(job, body),
        "task_id": _task_of(job, body),
    }
    completed = await lifecycle.move(
        tx,
        job.id,
        JobStatus.COMPLETED,
        message=f"Quiz ready: {len(stored)} questions",
        values={"result": result, "progress": 100, "error": None, **_external_id(job, body)},
        data={"source": "callback", "questions_created": len(stored)},
        max_running_per_user=services.settings.max_running_per_user,
    )
    if completed is None:
        raise _not_processing(job)
    return Reply(
        201,
        {
            "status": "ok",
            "saved": len(stored),
            "task_id": _task_of(job, body),
            "user_id": job.user_id,
        },
    )


def question_out(row: Any) -> dict[str, Any]:
    """A stored question in the original AI worker's shape, with its id and position."""
    return {
        "id": row.id,
        "position": row.position,
        "sentence": row.sentence,
        "options": {"A": row.option_a, "B": row.option_b, "C": row.option_c, "D": row.option_d},
        "correct_answer": row.correct_answer,
        "explanation": row.explanation,
        "type": row.type,
        "difficulty": row.difficulty,
        "score": row.score,
        "context": row.context,
    }


def _processing_time(job: JobRow, body: ResultCallback) -> float | None:
    if body.meta.processing_time_sec is not None:
        return body.meta.processing_time_sec
    if job.started_at is None:
        return None
    started: dt.datetime = job.started_at
    return round((dt.datetime.now(dt.UTC) - started).total_seconds(), 3)


def _external_id(job: JobRow, body: CallbackBody) -> dict[str, Any]:
    """A callback that beats the worker's hand-off still records the generator's task id."""
    if job.external_id or not body.worker_task_id or body.worker_task_id == str(job.id):
        return {}
    return {"external_id": body.worker_task_id}


def _task_of(job: JobRow, body: CallbackBody) -> str:
    return str(body.worker_task_id or job.external_id or job.id)


async def _replay_reply(services: Services, audit: _Audit, job_id: uuid.UUID) -> Reply:
    """The answer to a resend of an applied message: what the first delivery got, no effect."""
    async with services.engine.connect() as conn:
        job = await jobs_db.get_job(conn, job_id)
    if job is None:
        raise NotFound(f"No quiz job {job_id}.", code="job_not_found")
    task_id = str(job.external_id or job.id)
    if audit.kind == "result":
        saved = int((job.result or {}).get("questions_created", 0))
        reply = Reply(
            201,
            {
                "status": "ok",
                "saved": saved,
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
