"""The reference AI generator: a stand-in for the GPU box that writes quizzes.

It speaks the protocol an external generator must speak: `POST /generate` answers `202`
with a task id at once; later it posts progress and then the questions (or a failure) to
the job's `callback_url`, signed with Standard Webhooks using `JOBRELAY_GENERATOR_SECRET`
and carrying `X-AI-Worker-Token` when `JOBRELAY_AI_WORKER_TOKEN` is set. Requests to
`/generate` must be signed with the same secret when one is set.

Timing and failures are steered by directives (see `jobrelay.generator.behaviour`).
State lives in memory: a restarted generator forgets its tasks, as a real one might.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from jobrelay import signing
from jobrelay.config import Settings, get_settings
from jobrelay.errors import error_body
from jobrelay.generator.behaviour import Behaviour, parse_behaviour
from jobrelay.generator.questions import build_questions
from jobrelay.generator.sender import CallbackSender
from jobrelay.quizzes.schemas import GenerateRequest

__all__ = ["create_app", "run"]

logger = logging.getLogger("jobrelay.generator")

LEGACY_CALLBACK_PATH = "/api/ai/receive/"
_ACTIVE_STATES = frozenset({"accepted", "running"})
"""A repeated /generate for a job with a task in these states gets that task back; a retried
job whose earlier task ended gets a new one."""
_PROGRESS_STEPS = (
    (10, "Preparing the quiz plan..."),
    (40, "Generating questions..."),
    (80, "Checking answers..."),
)


@dataclass
class GenerationTask:
    """One accepted request and how far it got."""

    task_id: str
    job_id: str
    user_id: int
    callback_url: str
    state: str = "accepted"
    callbacks_sent: int = 0
    last_status_code: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "job_id": self.job_id,
            "user_id": self.user_id,
            "state": self.state,
            "callbacks_sent": self.callbacks_sent,
            "last_status_code": self.last_status_code,
        }


@dataclass
class GeneratorState:
    settings: Settings
    sender: CallbackSender
    tasks: dict[str, GenerationTask] = field(default_factory=dict)
    task_by_job: dict[str, str] = field(default_factory=dict)
    generate_calls: dict[str, int] = field(default_factory=dict)
    runners: set[asyncio.Task[None]] = field(default_factory=set)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The generator's ASGI app; `uvicorn --factory jobrelay.generator.app:create_app` works."""
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(follow_redirects=False) as http:
            app.state.generator = GeneratorState(
                settings=settings,
                sender=CallbackSender(
                    http,
                    secret=settings.generator_secret,
                    token=settings.ai_worker_token,
                    retries=settings.generator_callback_retries,
                    timeout=settings.generator_timeout,
                ),
            )
            try:
                yield
            finally:
                runners = list(app.state.generator.runners)
                for runner in runners:
                    runner.cancel()
                await asyncio.gather(*runners, return_exceptions=True)

    app = FastAPI(
        title="jobrelay reference generator",
        description="Answers /generate and calls back with deterministic quiz questions.",
        lifespan=lifespan,
    )

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/generate", status_code=202, response_model=None)
    async def generate(request: Request) -> JSONResponse | dict[str, str]:
        """Accept a quiz request and answer at once; the work happens in the background."""
        state: GeneratorState = request.app.state.generator
        body = await request.body()
        secrets = state.settings.generator_secret.split()
        if secrets:
            try:
                signing.verify(secrets, request.headers, body)
            except signing.SignatureError as exc:
                return _error(401, "invalid_signature", exc.message, [{"reason": exc.reason}])
        try:
            generate_request = GenerateRequest.model_validate_json(body)
        except ValidationError as exc:
            details = [
                {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                for e in exc.errors(include_url=False, include_input=False)
            ]
            return _error(422, "validation_error", "The request body is not valid.", details)

        behaviour = parse_behaviour(
            state.settings.generator_delay,
            state.settings.generator_behaviour,
            generate_request.extra_instructions,
        )
        job_id = generate_request.job_id
        calls = state.generate_calls.get(job_id, 0) + 1
        state.generate_calls[job_id] = calls
        if behaviour.accept_delay:
            await asyncio.sleep(behaviour.accept_delay)
        if behaviour.status is not None and not 200 <= behaviour.status < 300:
            return _error(behaviour.status, "generator_error", "Told to refuse this request.")
        if calls <= behaviour.flaky:
            return _error(503, "generator_busy", "Busy, try again later.")

        existing = state.tasks.get(state.task_by_job.get(job_id, ""))
        if existing is not None and existing.state in _ACTIVE_STATES:
            return {"task_id": existing.task_id, "status": "accepted"}
        task = GenerationTask(
            task_id=f"gen-{uuid.uuid4().hex}",
            job_id=job_id,
            user_id=generate_request.user_id,
            callback_url=generate_request.callback_url,
        )
        state.tasks[task.task_id] = task
        state.task_by_job[job_id] = task.task_id
        runner = asyncio.create_task(_run(state, task, generate_request, behaviour))
        state.runners.add(runner)
        runner.add_done_callback(state.runners.discard)
        return {"task_id": task.task_id, "status": "accepted"}

    @app.get("/tasks/{task_id}", response_model=None)
    async def task_status(task_id: str, request: Request) -> JSONResponse | dict[str, Any]:
        """What happened to one task; for operators and tests."""
        state: GeneratorState = request.app.state.generator
        task = state.tasks.get(task_id)
        if task is None:
            return _error(404, "not_found", f"No task {task_id}.")
        return task.as_dict()

    return app


async def _run(
    state: GeneratorState,
    task: GenerationTask,
    generate_request: GenerateRequest,
    behaviour: Behaviour,
) -> None:
    """Progress, then the result or a failure, each delivered before the next is sent."""
    started = time.monotonic()
    if behaviour.silent:
        task.state = "silent"
        return
    task.state = "running"
    url = _callback_url(task.callback_url, behaviour.legacy)
    pause = behaviour.delay / (len(_PROGRESS_STEPS) + 1)
    envelope = {"worker_task_id": task.task_id, "user_id": task.user_id}
    for progress, message in _PROGRESS_STEPS:
        await asyncio.sleep(pause)
        payload = {**envelope, "status": "processing", "progress": progress, "message": message}
        if not await _deliver(state, task, url, payload, behaviour.legacy):
            task.state = "abandoned"
            return
    await asyncio.sleep(pause)
    if behaviour.fail is not None:
        final: dict[str, Any] = {**envelope, "status": "failed", "error": behaviour.fail}
    else:
        questions = build_questions(generate_request)
        if behaviour.invalid_index is not None and behaviour.invalid_index < len(questions):
            questions[behaviour.invalid_index]["correct_answer"] = "E"
        final = {
            **envelope,
            "questions": questions,
            "meta": {
                "processing_time_sec": round(time.monotonic() - started, 3),
                "total_processed": len(questions),
            },
        }
    delivered = await _deliver(state, task, url, final, behaviour.legacy)
    task.state = (
        ("failed" if behaviour.fail is not None else "completed") if delivered else "refused"
    )


async def _deliver(
    state: GeneratorState, task: GenerationTask, url: str, payload: dict[str, Any], legacy: bool
) -> bool:
    """Send one callback; False when the service refused it or could not be reached."""
    delivery = await state.sender.post(url, payload, legacy=legacy)
    task.callbacks_sent += 1
    task.last_status_code = delivery.status_code
    if not delivery.accepted:
        logger.warning(
            "task %s: callback ended with %s after %d tries",
            task.task_id,
            delivery.status_code,
            delivery.attempts,
        )
    return delivery.accepted


def _callback_url(callback_url: str, legacy: bool) -> str:
    if not legacy:
        return callback_url
    return str(httpx.URL(callback_url).copy_with(path=LEGACY_CALLBACK_PATH, query=None))


def _error(
    status_code: int, code: str, message: str, details: list[Any] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status_code)


def run(host: str = "127.0.0.1", port: int = 9000, settings: Settings | None = None) -> None:
    """Serve the generator until interrupted (what `jobrelay generator` does)."""
    settings = settings or get_settings()
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level.lower())
