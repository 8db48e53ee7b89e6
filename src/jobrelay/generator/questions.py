"""Deterministic quiz questions: the same level, topics and weak skills give the same quiz.

The reference generator stands in for an LLM, so its output only has to be plausible,
valid, and repeatable for tests; it is built from templates, not language knowledge.
"""

from __future__ import annotations

import hashlib
from typing import Any

from jobrelay.quizzes.schemas import ANSWER_LETTERS, QuizInput

__all__ = ["build_questions"]

_DEFAULT_TOPICS = ("everyday work", "meetings", "email writing", "travel")
_DEFAULT_SKILLS = ("verb tenses", "prepositions", "articles", "word order")
_TYPES = ("sentence_completion", "multiple_choice", "error_correction")
_SCORES = {"beginner": 1.0, "elementary": 1.0, "intermediate": 1.0, "advanced": 2.0}

_SITUATIONS = (
    "During a meeting about {topic}, a colleague asks for your opinion.",
    "You are writing a short status update on {topic} for your team.",
    "A client emails you with a question about {topic}.",
    "In a review of last week's work on {topic}, your manager asks what happened.",
)


def build_questions(quiz: QuizInput) -> list[dict[str, Any]]:
    """`quiz.quiz_size` questions in the original AI worker's form."""
    topics = quiz.preferred_topics or list(_DEFAULT_TOPICS)
    skills = quiz.weak_skills or list(_DEFAULT_SKILLS)
    level = quiz.declared_level
    return [
        _question(index, level, topics[index % len(topics)], skills[index % len(skills)], quiz)
        for index in range(quiz.quiz_size)
    ]


def _question(index: int, level: str, topic: str, skill: str, quiz: QuizInput) -> dict[str, Any]:
    digest = hashlib.sha256(f"{level}|{topic}|{skill}|{index}".encode()).digest()
    correct = ANSWER_LETTERS[digest[0] % len(ANSWER_LETTERS)]
    situation = _SITUATIONS[digest[1] % len(_SITUATIONS)].format(topic=topic)
    right = f"A reply about {topic} that uses {skill} correctly and suits a {level} speaker."
    wrong = [
        f"A reply about {topic} that misuses {skill} in its main clause.",
        f"A reply that avoids {skill} and drifts away from {topic}.",
        f"A reply about {topic} that mixes {skill} with an unrelated form.",
    ]
    options: dict[str, str] = {}
    for letter in ANSWER_LETTERS:
        options[letter] = right if letter == correct else wrong.pop(0)
    setting = quiz.profession or "the workplace"
    return {
        "sentence": f"{situation} Which answer uses {skill} correctly? (question {index + 1})",
        "options": options,
        "correct_answer": correct,
        "explanation": (
            f"Option {correct} applies {skill} as expected at the {level} level; "
            "the others misuse it or change the subject."
        ),
        "type": _TYPES[index % len(_TYPES)],
        "difficulty": level.lower(),
        "score": _SCORES.get(level.lower(), 1.0),
        "context": f"{topic} in {setting}",
    }
