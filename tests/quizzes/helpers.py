"""Helpers for quiz tests: quizzes waiting on a silent generator, and callbacks posted by hand."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
from sqlalchemy import text

from jobrelay import signing
from jobrelay.services import Services
from tests.conftest import Stack
from tests.support.jobs import submit

QUIZ: dict[str, Any] = {
    "quiz_size": 11,
    "declared_level": "Advanced",
    "goals": "job",
    "profession": "software engineer",
    "referred_frequency": "daily",
    "motivation_level": 9,
    "preferred_topics": ["cloud computing", "API design and integration"],
    "weak_skills": ["gerunds vs infinitives", "past perfect tense in bug reporting"],
    "extra_instructions": "Focus on realistic workplace scenarios.",
}


def question(index: int = 0, **change: Any) -> dict[str, Any]:
    """A question in the original AI worker's form."""
    return {
        "sentence": f"During a sprint retrospective (#{index}), which statement is MOST appropriate?",
        "options": {
            "A": "The reviewer should approve all changes without examining them.",
            "B": "Code reviews should focus on bugs, security issues and code standards.",
            "C": "Only senior developers are responsible for reviewing code.",
            "D": "Code reviews are a waste of time and should be skipped.",
        },
        "correct_answer": "B",
        "explanation": "Effective code reviews prevent bugs and keep the code healthy.",
        "type": "sentence_completion",
        "difficulty": "advanced",
        "score": 1,
        "context": "agile meeting and code review",
        **change,
    }


def result_body(job: dict[str, Any], count: int, **change: Any) -> dict[str, Any]:
    return {
        "worker_task_id": job["external_id"],
        "user_id": job["user_id"],
        "questions": [question(i) for i in range(count)],
        "meta": {"processing_time_sec": 315, "total_processed": count},
        **change,
    }


async def waiting_quiz(
    client: httpx.AsyncClient, quiz_size: int = 5, timeout: float = 30, **body: Any
) -> dict[str, Any]:
    """A quiz the generator accepted and will never answer: `processing`, with `external_id`."""
    job_input = {**QUIZ, "quiz_size": quiz_size, "extra_instructions": "[gen:silent]"}
    job = await submit(client, "quiz.generate", job_input, **body)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current: dict[str, Any] = (await client.get(f"/v1/jobs/{job['id']}")).json()
        if current["status"] == "processing" and current["external_id"]:
            return current
        assert current["status"] in ("queued", "processing"), current
        await asyncio.sleep(0.05)
    raise AssertionError(f"quiz {job['id']} was never handed to the generator")


def signed(
    secret: str,
    payload: dict[str, Any] | bytes,
    *,
    msg_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, Any]:
    """`httpx` keyword arguments posting `payload` with Standard Webhooks headers."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = signing.sign(
        secret, msg_id or signing.new_message_id(), timestamp or int(time.time()), body
    )
    return {"content": body, "headers": {"Content-Type": "application/json", **headers}}


def with_token(token: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"json": payload, "headers": {"X-AI-Worker-Token": token}}


@contextlib.asynccontextmanager
async def admin_client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `stack`'s API holding its admin key (spawned stacks have their own users)."""
    async with httpx.AsyncClient(
        base_url=stack.api_url,
        headers={"Authorization": f"Bearer {stack.admin_key}"},
        timeout=30,
    ) as http:
        yield http


async def question_count(services: Services, job_id: str) -> int:
    async with services.engine.connect() as conn:
        found = await conn.execute(
            text("SELECT count(*) FROM questions WHERE job_id = :id"), {"id": uuid.UUID(job_id)}
        )
        return int(found.scalar_one())


async def events_of(client: httpx.AsyncClient, job_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/jobs/{job_id}/events", headers={"Accept": "application/json"})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def audit_of(client: httpx.AsyncClient, job_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/jobs/{job_id}/callbacks")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items
