"""Demo `quiz.generate` jobs for `jobrelay db seed`: five questions each, stored in the
`questions` table as a real result would be."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from jobrelay.db import seed as seed_db
from jobrelay.kinds.demo import Demo, DemoRows
from jobrelay.quizzes.questions import question_out

__all__ = ["DEMO", "QUIZ_SIZE"]

QUIZ_SIZE = 5


def _input(label: str, rng: random.Random) -> dict[str, Any]:
    return {
        "quiz_size": QUIZ_SIZE,
        "declared_level": rng.choice(["Beginner", "Intermediate", "Advanced"]),
        "goals": "job",
        "profession": rng.choice(["software engineer", "nurse", "accountant"]),
        "referred_frequency": "daily",
        "motivation_level": rng.randint(5, 10),
        "preferred_topics": ["cloud computing", "API design"],
        "weak_skills": ["gerunds vs infinitives"],
        "extra_instructions": "Realistic workplace scenarios.",
    }


def _questions(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "job_id": job["id"],
            "user_id": job["user_id"],
            "position": position,
            "sentence": f"In a stand-up meeting (#{position}), which sentence is MOST appropriate?",
            "option_a": "I have finished the review yesterday.",
            "option_b": "I finished the review yesterday.",
            "option_c": "I am finishing the review yesterday.",
            "option_d": "I finish the review yesterday.",
            "correct_answer": "B",
            "explanation": "A finished action at a stated past time takes the past simple.",
            "type": "sentence_completion",
            "difficulty": job["input"]["declared_level"].lower(),
            "score": 1,
            "context": "agile meeting",
            "created_at": job["completed_at"],
        }
        for position in range(1, QUIZ_SIZE + 1)
    ]


async def _store(conn: AsyncConnection, job: dict[str, Any]) -> DemoRows:
    stored = await seed_db.insert_questions(conn, _questions(job))
    result = {
        "questions": [question_out(q) for q in stored],
        "questions_created": len(stored),
        "task_id": job["external_id"],
    }
    return DemoRows(result=result, counts={"questions": len(stored)})


def _no_result(job: dict[str, Any], seconds: float) -> None:
    return None  # set by _store once the questions are stored


DEMO = Demo(
    inputs=_input,
    steps=[
        (5, "The generator accepted the quiz; waiting for questions..."),
        (40, "Generating questions"),
        (80, "Reviewing questions"),
    ],
    run_seconds=(30, 300),
    result=_no_result,
    failure=("generator_unavailable", "The quiz generator could not be reached on 5 tries."),
    done_message=f"Quiz ready: {QUIZ_SIZE} questions",
    external_id=True,
    store=_store,
)
