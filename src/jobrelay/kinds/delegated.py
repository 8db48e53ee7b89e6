"""Kinds carried out by an external HTTP worker (an AI generator on a GPU box, a service in
another language), declared rather than written:

```python
from jobrelay.kinds.delegated import delegated

TRANSCRIBE = delegated(
    "audio.transcribe",
    input=TranscribeInput,
    url_setting="transcriber_url",        # JOBRELAY_TRANSCRIBER_URL
    secret_setting="transcriber_secret",  # JOBRELAY_TRANSCRIBER_SECRET (whsec_...)
    result=TranscriptResult,              # the result callback's body
    deadline_seconds=1800,
)
```

A worker posts the hand-off to `{url}{path}` (default `/generate`), signed with Standard
Webhooks using the first secret of the setting: the input's fields at the top level, plus
`user_id`, `job_id` and `callback_url` (the original AI worker's form). Connection errors,
timeouts, 429 and 5xx are retried with exponential backoff and jitter; when the tries run out
the job fails with `generator_unavailable` or `generator_timeout`. A `2xx` with a `task_id`
leaves the job `processing` with no worker holding it: the external worker posts progress
(`{"status": "processing", "progress", "message"}`), then a result or
`{"status": "failed", "error"}` to `POST /v1/callbacks/{job_id}`, signed with the same secret;
every callback is audited. A job with no result by its deadline fails with `timeout`.

The result callback's body is validated with `result` and becomes the job's result, unless a
result handler is declared with `@TRANSCRIBE.on_result`; that one runs in the transaction that
completes the job, so it can store rows of its own (see `jobrelay.quizzes.tasks`).

`*_setting` names a field of jobrelay's settings, or else the environment variable
`JOBRELAY_<NAME>`, read when the kind is used.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict

from jobrelay.kinds import handoff_client as client
from jobrelay.kinds.demo import Demo
from jobrelay.kinds.registry import DEFAULT_QUEUE, REGISTRY, Deadline, KindRegistry, KindSpec
from jobrelay.runtime.backoff import backoff_delay
from jobrelay.runtime.errors import JobFailed
from jobrelay.runtime.registry import KindRunner, Outcome

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from jobrelay.config import Settings
    from jobrelay.db.jobs import JobRow
    from jobrelay.runtime.context import RunContext

__all__ = [
    "CallbackContext",
    "Delegation",
    "Delivered",
    "PlainResult",
    "delegated",
    "setting_value",
]

logger = logging.getLogger(__name__)


class PlainResult(BaseModel):
    """The default result callback: any JSON object, stored as the job's result."""

    model_config = ConfigDict(extra="allow")


@dataclass(frozen=True)
class CallbackContext:
    """What a result handler gets: the job (locked), and the connection of the transaction that
    completes it; rows written on `conn` commit with the completion or not at all."""

    conn: AsyncConnection
    job: JobRow
    task_id: str
    settings: Settings


@dataclass(frozen=True)
class Delivered:
    """A result handler's outcome: the job's result, its message, extra fields of the `201`
    reply to the external worker and of the completion event."""

    result: dict[str, Any]
    message: str = "Job completed"
    reply: dict[str, Any] = field(default_factory=dict)
    event_data: dict[str, Any] = field(default_factory=dict)


WAITING_MESSAGE = "The worker accepted the request (task {task_id}); waiting for the result..."
ResultHandler = Callable[[CallbackContext, Any], Awaitable[Delivered]]
HandlerT = TypeVar("HandlerT", bound=ResultHandler)
ReplayReply = Callable[["JobRow"], dict[str, Any]]
ResultCheck = Callable[[Any], Any]
CheckT = TypeVar("CheckT", bound=ResultCheck)


def setting_value(settings: Settings, name: str) -> str:
    """A setting by field name, or `JOBRELAY_<NAME>` from the environment; empty if unset."""
    if name in type(settings).model_fields:
        return str(getattr(settings, name) or "")
    return os.environ.get(f"JOBRELAY_{name.upper()}", "")


ENVELOPE_FIELDS = frozenset({"worker_task_id", "user_id", "status"})


async def _store_result(_: CallbackContext, body: BaseModel) -> Delivered:
    """The default: the result callback's body, less the envelope, is the job's result."""
    document = body.model_dump(mode="json")
    return Delivered(result={k: v for k, v in document.items() if k not in ENVELOPE_FIELDS})


@dataclass
class Delegation:
    """How a delegated kind reaches its external worker and takes its result."""

    name: str
    url_setting: str
    secret_setting: str
    token_setting: str | None = None
    path: str = "/generate"
    waiting_message: str = WAITING_MESSAGE
    result_model: type[BaseModel] = PlainResult
    result_handler: ResultHandler = _store_result
    result_check: ResultCheck | None = None
    replay_reply: ReplayReply | None = None

    def url(self, settings: Settings) -> str:
        base = setting_value(settings, self.url_setting)
        return base.rstrip("/") + self.path if base else ""

    def secrets(self, settings: Settings) -> list[str]:
        return setting_value(settings, self.secret_setting).split()

    def token(self, settings: Settings) -> str:
        return setting_value(settings, self.token_setting) if self.token_setting else ""

    def on_result(self, handler: HandlerT) -> HandlerT:
        """Declare the function that turns a validated result callback into the job's result
        (in the completing transaction)."""
        self.result_handler = handler
        return handler

    def check_result(self, check: CheckT) -> CheckT:
        """Declare a check of a validated result before the job is touched: it returns what
        the result handler gets, or raises `jobrelay.errors.Unprocessable` to refuse the
        callback with 422 (audited, nothing stored)."""
        self.result_check = check
        return check

    def on_replay(self, reply: ReplayReply) -> ReplayReply:
        """Declare the extra fields of the reply to a resent result (from the stored job)."""
        self.replay_reply = reply
        return reply


def delegated(
    name: str,
    *,
    input: type[BaseModel],
    url_setting: str,
    secret_setting: str,
    token_setting: str | None = None,
    path: str = "/generate",
    waiting_message: str = WAITING_MESSAGE,
    result: type[BaseModel] = PlainResult,
    queue: str = DEFAULT_QUEUE,
    deadline_seconds: Deadline = None,
    start_progress: int = 5,
    start_message: str | None = None,
    schema_name: str | None = None,
    description: str = "",
    demo: Demo | None = None,
    registry: KindRegistry | None = None,
) -> Delegation:
    """Register kind `name` as carried out by the external worker at setting `url_setting`
    (see the module docstring); the `Delegation`, whose `on_result` declares a result handler."""
    delegation = Delegation(
        name=name,
        url_setting=url_setting,
        secret_setting=secret_setting,
        token_setting=token_setting,
        path=path,
        waiting_message=waiting_message,
        result_model=result,
    )
    spec = KindSpec(
        name=name,
        input_model=input,
        runner=KindRunner(
            handler=_hand_off_runner(delegation, input),
            start_progress=start_progress,
            start_message=start_message or f"Sending the {name} request to its worker...",
        ),
        origin=f"{_caller_module()}:delegated({name!r})",
        queue=queue,
        deadline=deadline_seconds,
        schema_name=schema_name or "",
        description=description,
        delegation=delegation,
        demo=demo,
    )
    (registry if registry is not None else REGISTRY).register(spec)
    return delegation


def _caller_module() -> str:
    """The module that called `delegated(...)`, for messages about the declaration."""
    frame = sys._getframe(2)
    return str(frame.f_globals.get("__name__", "?"))


def callback_url(public_url: str, job_id: object) -> str:
    return f"{public_url.rstrip('/')}/v1/callbacks/{job_id}"


def hand_off_body(run: RunContext, data: BaseModel) -> dict[str, Any]:
    """The original AI worker's request: the input's fields at the top level, then who and
    where to call back."""
    return {
        **data.model_dump(mode="json"),
        "user_id": run.user_id,
        "job_id": str(run.job_id),
        "callback_url": callback_url(run.settings.public_url, run.job_id),
    }


def _hand_off_runner(
    delegation: Delegation, model: type[BaseModel]
) -> Callable[[RunContext], Awaitable[Outcome]]:
    async def hand_off(run: RunContext) -> Outcome:
        return await _hand_off(run, delegation, model.model_validate(run.input))

    hand_off.__qualname__ = f"hand_off[{delegation.name}]"
    return hand_off


async def _hand_off(run: RunContext, delegation: Delegation, data: BaseModel) -> Outcome:
    """Deliver the request, retrying what may pass (exponential backoff with jitter)."""
    settings = run.settings
    url = delegation.url(settings)
    if not url:
        raise JobFailed(
            "generator_not_configured",
            f"No worker is configured for {delegation.name}: set "
            f"JOBRELAY_{delegation.url_setting.upper()}, then retry the job.",
        )
    payload = hand_off_body(run, data)
    tries = settings.generator_retries + 1
    last: client.HandOffUnreachable | None = None
    for attempt in range(1, tries + 1):
        try:
            task_id = await client.post_hand_off(
                run.services.http,
                url,
                payload,
                secrets=delegation.secrets(settings),
                token=delegation.token(settings),
                timeout=settings.generator_timeout,
                secret_env=f"JOBRELAY_{delegation.secret_setting.upper()}",
            )
        except client.HandOffRejected as exc:
            raise JobFailed(
                "generator_rejected", f"The worker at {url} rejected the request: {exc.message}."
            ) from exc
        except client.HandOffUnreachable as exc:
            last = exc
            logger.warning("job %s: hand-off try %d/%d: %s", run.job_id, attempt, tries, exc)
            if attempt == tries:
                break
            delay = backoff_delay(
                attempt, base=settings.retry_base_delay, cap=settings.retry_max_delay
            )
            await run.progress(
                int(run.job.progress),
                f"Generator unavailable ({exc.message}); retry {attempt} of "
                f"{tries - 1} in {delay:.1f} s",
                data={"retry_in_seconds": round(delay, 2), "error": exc.message},
            )
            await asyncio.sleep(delay)
            continue
        return Outcome(
            detach=True,
            message=delegation.waiting_message.format(task_id=task_id),
            detach_values={"external_id": task_id},
        )
    raise _gave_up(last, tries, url, delegation)


def _gave_up(last: Exception | None, tries: int, url: str, delegation: Delegation) -> JobFailed:
    reason = getattr(last, "message", None) or "no attempt was made"
    setting = f"JOBRELAY_{delegation.url_setting.upper()}"
    if isinstance(last, client.HandOffTimeout):
        return JobFailed(
            "generator_timeout",
            f"The worker at {url} did not answer in time on {tries} tries (last: {reason}). "
            "Check that it is healthy or raise JOBRELAY_GENERATOR_TIMEOUT, then retry the job.",
        )
    return JobFailed(
        "generator_unavailable",
        f"The worker at {url} could not be reached on {tries} tries (last: {reason}). Check that "
        f"it is running and that {setting} points at it, then retry the job.",
    )
