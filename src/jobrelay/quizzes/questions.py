"""Question validation one question at a time, so a refusal names every bad index at once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from jobrelay.quizzes.schemas import QuestionIn

__all__ = ["QuestionProblem", "question_out", "validate_questions"]

QuestionProblem = dict[str, Any]
"""`{"index": i, "reason": "...", "errors": [{"field", "message"}]}` for one bad question."""


def validate_questions(raw: Sequence[Any]) -> tuple[list[QuestionIn], list[QuestionProblem]]:
    """Every valid question in order, and one problem per invalid one (empty if all are fine)."""
    valid: list[QuestionIn] = []
    problems: list[QuestionProblem] = []
    for index, item in enumerate(raw):
        try:
            valid.append(QuestionIn.model_validate(item))
        except ValidationError as exc:
            errors = [
                {
                    "field": ".".join(str(part) for part in error["loc"]) or "question",
                    "message": error["msg"],
                }
                for error in exc.errors(include_url=False, include_input=False)
            ]
            reason = "; ".join(
                f"{error['field']}: {error['message']}"
                if error["field"] != "question"
                else str(error["message"])
                for error in errors
            )
            problems.append({"index": index, "reason": reason, "errors": errors})
    return valid, problems


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
