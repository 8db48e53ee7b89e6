"""`quiz.generate`: delegated to the external AI generator (`JOBRELAY_GENERATOR_URL`).

The worker only delivers the request (see `jobrelay.kinds.delegated`). Once the generator
answers with a task id the job stays `processing` with no lease (no worker holds it) until a
callback completes or fails it, or the deadline set at claim time
(`JOBRELAY_QUIZ_DEADLINE_SECONDS`, or the job's `deadline_seconds`) passes and the reaper fails
it with `timeout`.
"""

from __future__ import annotations

from jobrelay.kinds.delegated import delegated
from jobrelay.quizzes.schemas import QuizInput, ResultCallback

__all__ = ["KIND", "QUIZ"]

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
)
