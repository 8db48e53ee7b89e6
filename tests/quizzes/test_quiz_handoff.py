"""Handing a quiz to the generator: retries, the ways it gives up, and the deadline."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from jobrelay.embedded import free_tcp_port
from tests.conftest import MakeUser, Stack
from tests.quizzes.helpers import QUIZ, admin_client, events_of, waiting_quiz
from tests.support.jobs import submit, wait_for_status

SpawnStack = Callable[..., Awaitable[Stack]]


def _quiz(marker: str, size: int = 3) -> dict[str, Any]:
    return {**QUIZ, "quiz_size": size, "extra_instructions": marker}


def _retry_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if "retry_in_seconds" in e["data"]]


async def test_generator_down_is_retried_then_generator_unavailable(
    spawn_stack: SpawnStack,
) -> None:
    """Nothing listens at the generator URL."""
    dead = f"http://127.0.0.1:{free_tcp_port()}"
    down = await spawn_stack(generator_url=dead)
    async with admin_client(down) as owner:
        job = await submit(owner, "quiz.generate", _quiz(""))
        failed = await wait_for_status(owner, job["id"], timeout=30)
        retries = _retry_events(await events_of(owner, job["id"]))
    assert failed["status"] == "failed", failed
    assert failed["error"]["code"] == "generator_unavailable"
    assert dead in failed["error"]["message"]
    assert "JOBRELAY_GENERATOR_URL" in failed["error"]["message"]
    assert failed["external_id"] is None
    assert len(retries) == 2, "JOBRELAY_GENERATOR_RETRIES=2: three tries, two waits"


async def test_generator_5xx_is_retried_then_generator_unavailable(
    stack: Stack, make_user: MakeUser
) -> None:
    user = await make_user()
    job = await submit(user.client, "quiz.generate", _quiz("[gen:status=503]"))
    failed = await wait_for_status(user.client, job["id"], timeout=30)
    assert failed["status"] == "failed", failed
    assert failed["error"]["code"] == "generator_unavailable"
    assert "HTTP 503" in failed["error"]["message"]
    assert len(_retry_events(await events_of(user.client, job["id"]))) == 2


async def test_a_generator_that_recovers_gets_the_quiz(stack: Stack, make_user: MakeUser) -> None:
    user = await make_user()
    job = await submit(user.client, "quiz.generate", _quiz("[gen:flaky=2]", size=2))
    done = await wait_for_status(user.client, job["id"], timeout=30)
    assert done["status"] == "completed", done
    assert len(_retry_events(await events_of(user.client, job["id"]))) == 2
    result = (await user.client.get(f"/v1/jobs/{job['id']}/result")).json()
    assert result["questions_created"] == 2


async def test_a_slow_generator_ends_in_generator_timeout(spawn_stack: SpawnStack) -> None:
    slow = await spawn_stack(generator=True, generator_timeout="0.3")
    async with admin_client(slow) as owner:
        job = await submit(owner, "quiz.generate", _quiz("[gen:accept-delay=2]"))
        failed = await wait_for_status(owner, job["id"], timeout=30)
    assert failed["status"] == "failed", failed
    assert failed["error"]["code"] == "generator_timeout"
    assert "JOBRELAY_GENERATOR_TIMEOUT" in failed["error"]["message"]


async def test_a_refusal_is_not_retried(stack: Stack, make_user: MakeUser) -> None:
    user = await make_user()
    job = await submit(user.client, "quiz.generate", _quiz("[gen:status=422]"))
    failed = await wait_for_status(user.client, job["id"], timeout=30)
    assert failed["status"] == "failed", failed
    assert failed["error"]["code"] == "generator_rejected"
    assert "422" in failed["error"]["message"]
    assert _retry_events(await events_of(user.client, job["id"])) == []


async def test_generator_failure_callback_fails_the_job(stack: Stack, make_user: MakeUser) -> None:
    user = await make_user()
    job = await submit(user.client, "quiz.generate", _quiz("[gen:fail=GPU out of memory]"))
    failed = await wait_for_status(user.client, job["id"], timeout=30)
    assert failed["status"] == "failed", failed
    assert failed["error"] == {"code": "generator_failed", "message": "GPU out of memory"}


async def test_a_quiz_with_no_result_by_its_deadline_times_out(spawn_stack: SpawnStack) -> None:
    """A 2 s quiz deadline, and a generator that accepts the quiz but never calls back."""
    short = await spawn_stack(generator=True, quiz_deadline_seconds="2")
    async with admin_client(short) as owner:
        job = await waiting_quiz(owner, quiz_size=2)
        assert job["status"] == "processing"
        started = time.monotonic()
        failed = await wait_for_status(owner, job["id"], timeout=30)
    assert failed["status"] == "failed", failed
    assert failed["error"]["code"] == "timeout"
    assert time.monotonic() - started < 15


async def test_a_retried_quiz_gets_a_new_generator_task(stack: Stack, make_user: MakeUser) -> None:
    user = await make_user()
    job = await submit(user.client, "quiz.generate", _quiz("[gen:fail=try again]", size=2))
    failed = await wait_for_status(user.client, job["id"], timeout=30)
    assert failed["status"] == "failed"
    first_task = failed["external_id"]
    retried = await user.client.post(f"/v1/jobs/{job['id']}/retry")
    assert retried.status_code == 200, retried.text
    again = await wait_for_status(user.client, job["id"], {"failed", "completed"}, timeout=30)
    assert again["external_id"] != first_task
    assert again["attempts"] == 2


async def test_result_of_an_unfinished_quiz_is_409(stack: Stack, make_user: MakeUser) -> None:
    user = await make_user()
    job = await waiting_quiz(user.client, quiz_size=2)
    response = await user.client.get(f"/v1/jobs/{job['id']}/result")
    assert response.status_code == 409
    assert response.json()["error"]["details"] == [{"status": "processing"}]
