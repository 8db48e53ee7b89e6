"""`quiz.generate`: delegated to the external AI generator (`JOBRELAY_GENERATOR_URL`).

The worker only delivers the request (see `jobrelay.kinds.delegated`). Once the generator
answers with a task id the job stays `processing` with no lease (no worker holds it) until a
callback completes or fails it, or the deadline set at claim time
(`JOBRELAY_QUIZ_DEADLINE_SECONDS`, or the job's `deadline_seconds`) passes and the reaper fails
it with `timeout`. The result's questions are validated one by one and stored in the
`questions` table in the transaction that completes the job.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from jobrelay.db import questions as questions_db
from jobrelay.db.jobs import JobRow
from jobrelay.errors import Unprocessable
from jobrelay.kinds.delegated import CallbackContext, Delivered, delegated
from jobrelay.quizzes.demo import DEMO
from jobrelay.quizzes.questions import question_out, validate_questions
from jobrelay.quizzes.schemas import QuestionIn, QuizInput, ResultCallback

__all__ = ["KIND", "QUIZ", "question_out"]

KIND = "quiz.generate"

QUIZ = delegated(
    KIND,
    input=QuizInput,
    url_setting="generator_url",
    secret_setting="generator_secret",
    token_setting="ai_worker_token",
    result=ResultCallback,
    deadline_seconds=lambda settings: settings.quiz_deadline_seconds,
    start_progress=5,
    start_message="Sending the quiz request to the generator...",
    waiting_message="The generator accepted the quiz (task {task_id}); waiting for questions...",
    schema_name="QuizJobCreate",
    description="Quiz questions written by the external AI generator.",
    demo=DEMO,
)


@dataclass(frozen=True)
class CheckedResult:
    body: ResultCallback
    questions: list[QuestionIn]


@QUIZ.check_result
def check_questions(body: ResultCallback) -> CheckedResult:
    """Every question valid, or a 422 naming each bad index (nothing is stored)."""
    valid, problems = validate_questions(body.questions)
    if problems:
        raise Unprocessable(
            f"{len(problems)} of {len(body.questions)} questions are not valid; nothing was "
            "saved. Fix them and send the whole result again.",
            code="invalid_questions",
            details=[{"loc": ["body", "questions", p["index"]], **p} for p in problems],
        )
    return CheckedResult(body, valid)


@QUIZ.on_result
async def store_questions(ctx: CallbackContext, checked: CheckedResult) -> Delivered:
    """Store the questions in bulk; the job's result lists them as stored."""
    job = ctx.job
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
        for position, question in enumerate(checked.questions, start=1)
    ]
    await questions_db.insert_questions(ctx.conn, rows)
    stored = await questions_db.list_for_job(ctx.conn, job.id)
    result = {
        "questions": [question_out(row) for row in stored],
        "questions_created": len(stored),
        "processing_time_sec": _processing_time(job, checked.body),
        "task_id": ctx.task_id,
    }
    return Delivered(
        result=result,
        message=f"Quiz ready: {len(stored)} questions",
        reply={"saved": len(stored)},
        event_data={"questions_created": len(stored)},
    )


@QUIZ.on_replay
def replay_saved(job: JobRow) -> dict[str, Any]:
    """A resent result is told how many questions the first one saved."""
    return {"saved": int((job.result or {}).get("questions_created", 0))}


def _processing_time(job: JobRow, body: ResultCallback) -> float | None:
    if body.meta.processing_time_sec is not None:
        return body.meta.processing_time_sec
    if job.started_at is None:
        return None
    started: dt.datetime = job.started_at
    return round((dt.datetime.now(dt.UTC) - started).total_seconds(), 3)
