"""Shapes of quiz data: the client's input and the three bodies a generator may post back.

The input and the result are the original AI worker's payloads, field for field, so an
existing worker keeps working. Unknown fields are rejected everywhere except in `meta`,
which generators use for their own bookkeeping.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from jobrelay.callbacks.bodies import CallbackBase, FailureCallback, ProgressCallback, TaskId
from jobrelay.validation import JsonInt

__all__ = [
    "ANSWER_LETTERS",
    "MAX_QUESTIONS_PER_CALLBACK",
    "FailureCallback",
    "GenerateRequest",
    "ProgressCallback",
    "QuestionIn",
    "QuestionOptions",
    "QuizInput",
    "ResultCallback",
    "ResultMeta",
]

ANSWER_LETTERS = ("A", "B", "C", "D")
MAX_QUESTIONS_PER_CALLBACK = 200
"""More than the largest quiz, so a generator that adds a few is not refused."""

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Label = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"\S"}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class QuizInput(_Strict):
    """What a client asks for; the original request body without `user_id`."""

    quiz_size: JsonInt = Field(ge=1, le=100, description="Number of questions, 1-100.")
    declared_level: Label = Field(
        default="Intermediate", description="The learner's level, e.g. Beginner or Advanced."
    )
    goals: ShortText = Field(default="", description="Why the learner studies, e.g. job.")
    profession: ShortText = Field(default="", description="e.g. software engineer.")
    referred_frequency: ShortText = Field(default="", description="How often, e.g. daily.")
    motivation_level: JsonInt = Field(default=5, ge=1, le=10, description="1-10.")
    preferred_topics: list[Label] = Field(default_factory=list, max_length=20)
    weak_skills: list[Label] = Field(default_factory=list, max_length=20)
    extra_instructions: str = Field(default="", max_length=2000)


class GenerateRequest(QuizInput):
    """What a worker posts to `{generator}/generate`: the original AI worker's request, the
    quiz's fields at the top level, plus who asked and where to call back."""

    job_id: TaskId
    callback_url: str = Field(min_length=1, max_length=2000, pattern=r"^https?://")
    user_id: int = Field(strict=True, ge=1)


class QuestionOptions(_Strict):
    """The four answers; all present, none empty."""

    A: str = Field(min_length=1, max_length=1000)
    B: str = Field(min_length=1, max_length=1000)
    C: str = Field(min_length=1, max_length=1000)
    D: str = Field(min_length=1, max_length=1000)


class QuestionIn(_Strict):
    """One generated question, as the original AI worker sends it."""

    sentence: str = Field(min_length=1, max_length=4000)
    options: QuestionOptions
    correct_answer: Literal["A", "B", "C", "D"]
    explanation: str = Field(default="", max_length=4000)
    type: str = Field(default="", max_length=64)
    difficulty: str = Field(default="", max_length=64)
    score: float = Field(default=1.0, ge=0, le=1000, allow_inf_nan=False)
    context: str = Field(default="", max_length=1000)

    @field_validator("correct_answer", mode="before")
    @classmethod
    def _normalise_letter(cls, value: Any) -> Any:
        """Generators write `b` or ` B `; the letter is what matters."""
        return value.strip().upper() if isinstance(value, str) else value


class ResultMeta(BaseModel):
    """Generator bookkeeping; unknown keys are kept, not refused."""

    model_config = ConfigDict(extra="allow")

    processing_time_sec: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    total_processed: int | None = Field(default=None, ge=0)


class ResultCallback(CallbackBase):
    """The result envelope. Questions stay raw here: each is validated on its own so a
    rejection can name every bad index (see `jobrelay.quizzes.questions`)."""

    status: Literal["completed"] | None = None
    questions: list[Any] = Field(min_length=1, max_length=MAX_QUESTIONS_PER_CALLBACK)
    meta: ResultMeta = Field(default_factory=ResultMeta)
