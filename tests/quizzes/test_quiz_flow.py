"""`quiz.generate` end to end: API, worker and the reference generator as real processes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from jobrelay.services import Services
from tests.conftest import MakeUser, Stack
from tests.support.jobs import submit, wait_for_status

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


async def _question_rows(services: Services, job_id: str) -> list[Any]:
    async with services.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT * FROM questions WHERE job_id = :id ORDER BY position"),
            {"id": uuid.UUID(job_id)},
        )
        return list(rows)


async def test_a_quiz_goes_from_submit_to_stored_questions(
    stack: Stack, make_user: MakeUser, services: Services
) -> None:
    user = await make_user()
    job = await submit(user.client, "quiz.generate", QUIZ)
    assert job["kind"] == "quiz.generate" and job["status"] == "queued"

    done = await wait_for_status(user.client, job["id"], timeout=30)
    assert done["status"] == "completed", done
    assert done["progress"] == 100
    assert done["external_id"].startswith("gen-")

    result = (await user.client.get(f"/v1/jobs/{job['id']}/result")).json()
    assert result["questions_created"] == 11
    assert result["processing_time_sec"] >= 0
    assert [q["position"] for q in result["questions"]] == list(range(1, 12))
    first = result["questions"][0]
    assert set(first["options"]) == {"A", "B", "C", "D"}
    assert first["correct_answer"] in "ABCD" and first["difficulty"] == "advanced"

    rows = await _question_rows(services, job["id"])
    assert len(rows) == 11
    assert {row.user_id for row in rows} == {user.id}
    assert [row.sentence for row in rows] == [q["sentence"] for q in result["questions"]]

    events = (
        await user.client.get(
            f"/v1/jobs/{job['id']}/events", headers={"Accept": "application/json"}
        )
    ).json()["items"]
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress), "progress never goes down"
    assert {10, 40, 80} <= set(progress), "the generator's progress callbacks are events"
    assert events[-1]["status"] == "completed"

    audit = (await user.client.get(f"/v1/jobs/{job['id']}/callbacks")).json()["items"]
    assert [c["kind"] for c in audit] == ["progress", "progress", "progress", "result"]
    assert all(c["outcome"] == "applied" and c["webhook_id"] for c in audit)
    assert audit[-1]["status_code"] == 201


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"quiz_size": 0}, "quiz_size"),
        ({"quiz_size": 101}, "quiz_size"),
        ({"motivation_level": 11}, "motivation_level"),
        ({"preferred_topics": "cloud"}, "preferred_topics"),
        ({"colour": "blue"}, "colour"),
    ],
)
async def test_bad_quiz_input_is_422_naming_the_field(
    stack: Stack, make_user: MakeUser, change: dict[str, Any], field: str
) -> None:
    user = await make_user()
    response = await user.client.post(
        "/v1/jobs", json={"kind": "quiz.generate", "input": {**QUIZ, **change}}
    )
    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert any(field in d["loc"] for d in details), details
