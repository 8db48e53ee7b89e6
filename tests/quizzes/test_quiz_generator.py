"""The reference generator as a real process: the protocol a real AI generator must follow."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from jobrelay import signing
from jobrelay.quizzes.questions import validate_questions

SECRET = signing.new_secret()
TOKEN = "legacy-worker-token"
QUIZ = {
    "quiz_size": 5,
    "declared_level": "Advanced",
    "goals": "job",
    "profession": "software engineer",
    "referred_frequency": "daily",
    "motivation_level": 9,
    "preferred_topics": ["cloud computing", "API design and integration"],
    "weak_skills": ["gerunds vs infinitives", "prepositions in technical contexts"],
    "extra_instructions": "Focus on realistic workplace scenarios.",
}


def _request(recorder: Any, job_id: str, **quiz: Any) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "callback_url": f"{recorder.url}/v1/callbacks/{job_id}",
        "user_id": 7,
        **QUIZ,
        **quiz,
    }


async def _generate(generator: str, sign_payload: Any, payload: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(f"{generator}/generate", **sign_payload(SECRET, payload))


@pytest.fixture(scope="module")
def generator(module_generator: Any) -> str:
    return str(
        module_generator(generator_secret=SECRET, ai_worker_token=TOKEN, generator_delay="0.2")
    )


async def test_health(generator: str) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{generator}/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_progress_then_signed_result(
    generator: str, recorder: Any, sign_payload: Any
) -> None:
    response = await _generate(generator, sign_payload, _request(recorder, "job-1"))
    assert response.status_code == 202
    task_id = response.json()["task_id"]
    assert task_id.startswith("gen-")

    received = await recorder.wait_for(4)
    assert {r.path for r in received} == {"/v1/callbacks/job-1"}
    for callback in received:
        assert signing.verify([SECRET], callback.headers, callback.body)
        assert callback.headers["x-ai-worker-token"] == TOKEN
    progress = [r.json for r in received[:3]]
    assert [p["status"] for p in progress] == ["processing"] * 3
    assert [p["progress"] for p in progress] == [10, 40, 80]
    assert all(p["message"] and p["worker_task_id"] == task_id for p in progress)

    result = received[3].json
    assert result["worker_task_id"] == task_id
    assert result["user_id"] == 7
    assert result["meta"]["total_processed"] == 5
    assert result["meta"]["processing_time_sec"] >= 0
    valid, problems = validate_questions(result["questions"])
    assert problems == [] and len(valid) == 5
    assert all(q.difficulty == "advanced" for q in valid)
    assert all(q.context.split(" in ")[0] in QUIZ["preferred_topics"] for q in valid)
    assert any("gerunds vs infinitives" in q.sentence for q in valid)


async def test_questions_are_deterministic(
    generator: str, recorder: Any, sign_payload: Any
) -> None:
    await _generate(generator, sign_payload, _request(recorder, "job-a"))
    await _generate(generator, sign_payload, _request(recorder, "job-b"))
    received = await recorder.wait_for(8)
    results = [r.json["questions"] for r in received if "questions" in r.json]
    assert len(results) == 2 and results[0] == results[1]


async def test_unsigned_or_wrongly_signed_generate_is_refused(
    generator: str, recorder: Any, sign_payload: Any
) -> None:
    signed_payload_args = sign_payload
    payload = _request(recorder, "job-x")
    async with httpx.AsyncClient() as client:
        unsigned = await client.post(f"{generator}/generate", json=payload)
        wrong = await client.post(
            f"{generator}/generate", **signed_payload_args(signing.new_secret(), payload)
        )
    assert unsigned.status_code == 401
    assert unsigned.json()["error"]["details"] == [{"reason": "missing_headers"}]
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_signature"


async def test_invalid_request_body_is_422(
    generator: str, recorder: Any, sign_payload: Any
) -> None:
    payload = _request(recorder, "job-bad", quiz_size=0)
    response = await _generate(generator, sign_payload, payload)
    assert response.status_code == 422
    fields = [d["field"] for d in response.json()["error"]["details"]]
    assert fields == ["quiz_size"]


async def test_repeated_generate_for_a_running_job_returns_the_same_task(
    generator: str, recorder: Any, sign_payload: Any
) -> None:
    first = await _generate(generator, sign_payload, _request(recorder, "job-r"))
    second = await _generate(generator, sign_payload, _request(recorder, "job-r"))
    assert first.json()["task_id"] == second.json()["task_id"]
    await recorder.wait_for(4)
    assert len([r for r in recorder.received if "questions" in r.json]) == 1


async def test_fail_marker_posts_a_failure(
    generator: str, recorder: Any, sign_payload: Any
) -> None:
    payload = _request(recorder, "job-f", extra_instructions="[gen:fail=GPU out of memory]")
    await _generate(generator, sign_payload, payload)
    received = await recorder.wait_for(4)
    assert received[3].json["status"] == "failed"
    assert received[3].json["error"] == "GPU out of memory"


async def test_invalid_marker_breaks_one_question(
    generator: str, recorder: Any, sign_payload: Any
) -> None:
    payload = _request(recorder, "job-i", extra_instructions="[gen:invalid=2]")
    await _generate(generator, sign_payload, payload)
    received = await recorder.wait_for(4)
    _, problems = validate_questions(received[3].json["questions"])
    assert [p["index"] for p in problems] == [2]


async def test_status_and_flaky_markers(generator: str, recorder: Any, sign_payload: Any) -> None:
    down = _request(recorder, "job-down", extra_instructions="[gen:status=503]")
    assert (await _generate(generator, sign_payload, down)).status_code == 503
    flaky = _request(recorder, "job-flaky", extra_instructions="[gen:flaky=2]")
    codes = [(await _generate(generator, sign_payload, flaky)).status_code for _ in range(3)]
    assert codes == [503, 503, 202]


async def test_callbacks_are_retried_with_the_same_message_id(
    generator: str, recorder: Any, sign_payload: Any
) -> None:
    recorder.answers.extend([503, 500])
    await _generate(generator, sign_payload, _request(recorder, "job-retry"))
    received = await recorder.wait_for(6, within=20)
    first_ids = {r.headers["webhook-id"] for r in received[:3]}
    assert len(first_ids) == 1, "the first callback was retried under one webhook-id"
    assert received[2].json == received[0].json
    assert "questions" in received[5].json


async def test_a_refused_progress_callback_stops_the_task(
    generator: str, recorder: Any, sign_payload: Any
) -> None:
    recorder.answers.append(409)
    response = await _generate(generator, sign_payload, _request(recorder, "job-gone"))
    await recorder.wait_for(1)
    async with httpx.AsyncClient() as client:
        for _ in range(50):
            task = (await client.get(f"{generator}/tasks/{response.json()['task_id']}")).json()
            if task["state"] != "running":
                break
            await asyncio.sleep(0.05)
    assert task["state"] == "abandoned"
    assert len(recorder.received) == 1


async def test_legacy_marker_calls_back_like_the_original_worker(
    generator: str, recorder: Any, sign_payload: Any
) -> None:
    payload = _request(recorder, "job-legacy", extra_instructions="[gen:legacy]")
    await _generate(generator, sign_payload, payload)
    received = await recorder.wait_for(4)
    assert {r.path for r in received} == {"/api/ai/receive/"}
    assert all("webhook-signature" not in r.headers for r in received)
    assert all(r.headers["x-ai-worker-token"] == TOKEN for r in received)


async def test_silent_marker_never_calls_back(
    start_generator: Any, recorder: Any, sign_payload: Any
) -> None:
    generator = start_generator(generator_secret=SECRET, generator_behaviour="silent delay=0")
    response = await _generate(generator, sign_payload, _request(recorder, "job-silent"))
    assert response.status_code == 202
    async with httpx.AsyncClient() as client:
        task = (await client.get(f"{generator}/tasks/{response.json()['task_id']}")).json()
    assert task["state"] == "silent"
    with pytest.raises(TimeoutError):
        await recorder.wait_for(1, within=0.5)
