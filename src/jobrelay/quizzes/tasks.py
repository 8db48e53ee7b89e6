"""The `quiz.generate` job body: hand the quiz to the external generator, then let go.

The worker only delivers the request. Once the generator answers with a task id the job stays
`processing` with no lease (no worker holds it) until a callback completes or fails it, or the
deadline set at claim time (`JOBRELAY_QUIZ_DEADLINE_SECONDS`, or the job's `deadline_seconds`)
passes and the reaper fails it with `timeout`.
"""

from __future__ import annotations

import asyncio
import logging

from jobrelay.quizzes.client import (
    GeneratorRejected,
    GeneratorTimeout,
    GeneratorUnreachable,
    generate_url,
    request_generation,
)
from jobrelay.quizzes.schemas import QuizInput
from jobrelay.runtime.backoff import backoff_delay
from jobrelay.runtime.context import RunContext
from jobrelay.runtime.errors import JobFailed
from jobrelay.runtime.registry import KindRunner, Outcome

__all__ = ["KIND", "RUNNER", "callback_url", "hand_off"]

logger = logging.getLogger(__name__)

KIND = "quiz.generate"
START = (5, "Sending the quiz request to the generator...")


def callback_url(public_url: str, job_id: object) -> str:
    return f"{public_url.rstrip('/')}/v1/callbacks/{job_id}"


async def hand_off(ctx: RunContext) -> Outcome:
    """Deliver the request, retrying what may pass (exponential backoff with jitter)."""
    settings = ctx.settings
    if not settings.generator_url:
        raise JobFailed(
            "generator_not_configured",
            "No quiz generator is configured: set JOBRELAY_GENERATOR_URL (jobrelay dev starts "
            "the reference generator), then retry the job.",
        )
    quiz = QuizInput.model_validate(ctx.input)
    payload = {
        "job_id": str(ctx.job_id),
        "callback_url": callback_url(settings.public_url, ctx.job_id),
        "user_id": ctx.user_id,
        "input": quiz.model_dump(mode="json"),
    }
    tries = settings.generator_retries + 1
    last: GeneratorUnreachable | None = None
    for attempt in range(1, tries + 1):
        try:
            task_id = await request_generation(ctx.services.http, settings, payload)
        except GeneratorRejected as exc:
            raise JobFailed(
                "generator_rejected",
                f"The quiz generator at {generate_url(settings)} rejected the request: "
                f"{exc.message}.",
            ) from exc
        except GeneratorUnreachable as exc:
            last = exc
            logger.warning("job %s: generator try %d/%d: %s", ctx.job_id, attempt, tries, exc)
            if attempt == tries:
                break
            delay = backoff_delay(
                attempt, base=settings.retry_base_delay, cap=settings.retry_max_delay
            )
            await ctx.progress(
                START[0],
                f"Generator unavailable ({exc.message}); retry {attempt} of "
                f"{tries - 1} in {delay:.1f} s",
                data={"retry_in_seconds": round(delay, 2), "error": exc.message},
            )
            await asyncio.sleep(delay)
            continue
        return Outcome(
            detach=True,
            message=f"The generator accepted the quiz (task {task_id}); waiting for questions...",
            detach_values={"external_id": task_id},
        )
    raise _gave_up(last, tries, generate_url(settings))


def _gave_up(last: GeneratorUnreachable | None, tries: int, url: str) -> JobFailed:
    reason = last.message if last else "no attempt was made"
    if isinstance(last, GeneratorTimeout):
        return JobFailed(
            "generator_timeout",
            f"The quiz generator at {url} did not answer in time on {tries} tries "
            f"(last: {reason}). Check that it is healthy or raise JOBRELAY_GENERATOR_TIMEOUT, "
            "then retry the job.",
        )
    return JobFailed(
        "generator_unavailable",
        f"The quiz generator at {url} could not be reached on {tries} tries (last: {reason}). "
        "Check that it is running and that JOBRELAY_GENERATOR_URL points at it, then retry "
        "the job.",
    )


RUNNER = KindRunner(handler=hand_off, start_progress=START[0], start_message=START[1])
