"""The state machine: the table itself, exhaustively, and each allowed and forbidden move
through the API."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest

from jobrelay.jobs.states import (
    ALLOWED_TRANSITIONS,
    JobStatus,
    can_transition,
    is_terminal,
    sources_of,
)
from tests.conftest import MakeUser, Stack
from tests.jobs.test_api_contract import assert_error_shape
from tests.support.jobs import prompt_input, submit, wait_for_status

EXPECTED = {
    ("queued", "processing"),
    ("queued", "canceled"),
    ("processing", "completed"),
    ("processing", "failed"),
    ("processing", "canceled"),
    ("failed", "queued"),
    ("canceled", "queued"),
}


@pytest.mark.parametrize(("source", "target"), list(itertools.product(JobStatus, JobStatus)))
def test_every_pair_of_states(source: JobStatus, target: JobStatus) -> None:
    assert can_transition(source, target) is ((source.value, target.value) in EXPECTED)


def test_table_and_sources_agree() -> None:
    assert {(s.value, t.value) for s, t in ALLOWED_TRANSITIONS} == EXPECTED
    assert sources_of(JobStatus.QUEUED) == ("canceled", "failed")
    assert sources_of(JobStatus.CANCELED) == ("processing", "queued")
    assert not any(can_transition(JobStatus.COMPLETED, t) for t in JobStatus)
    assert {s for s in JobStatus if is_terminal(s)} == {"completed", "failed", "canceled"}


async def test_cancel_queued_then_retry(make_user: MakeUser, spawn_stack) -> None:
    idle: Stack = await spawn_stack(workers=0)
    user = await make_user(on=idle)
    job = await submit(user.client, "prompt.generate", prompt_input())
    canceled = await user.client.post(f"/v1/jobs/{job['id']}/cancel")
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "canceled"
    assert_error_shape(
        await user.client.post(f"/v1/jobs/{job['id']}/cancel"), 409, "job_not_cancelable"
    )
    retried = await user.client.post(f"/v1/jobs/{job['id']}/retry")
    assert retried.status_code == 200
    assert retried.json()["status"] == "queued"
    assert retried.json()["progress"] == 0
    assert_error_shape(
        await user.client.post(f"/v1/jobs/{job['id']}/retry"), 409, "job_not_retryable"
    )


async def test_completed_job_cannot_move(make_user: MakeUser) -> None:
    user = await make_user()
    job = await submit(user.client, "prompt.generate", prompt_input())
    await wait_for_status(user.client, job["id"], "completed")
    assert_error_shape(
        await user.client.post(f"/v1/jobs/{job['id']}/cancel"), 409, "job_not_cancelable"
    )
    assert_error_shape(
        await user.client.post(f"/v1/jobs/{job['id']}/retry"), 409, "job_not_retryable"
    )
    assert (await user.client.get(f"/v1/jobs/{job['id']}")).json()["status"] == "completed"


async def test_cancel_processing_aborts_the_work(make_user: MakeUser, spawn_stack) -> None:
    slow: Stack = await spawn_stack(prompt_step_delay="1")
    user = await make_user(on=slow)
    job = await submit(user.client, "prompt.generate", prompt_input())
    await wait_for_status(user.client, job["id"], "processing", timeout=20)
    canceled = await user.client.post(f"/v1/jobs/{job['id']}/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    events_before = (
        await user.client.get(
            f"/v1/jobs/{job['id']}/events", headers={"Accept": "application/json"}
        )
    ).json()["items"]
    await asyncio.sleep(3)
    events_after = (
        await user.client.get(
            f"/v1/jobs/{job['id']}/events", headers={"Accept": "application/json"}
        )
    ).json()["items"]
    assert events_after == events_before, "the aborted job kept reporting progress"
    final = (await user.client.get(f"/v1/jobs/{job['id']}")).json()
    assert final["status"] == "canceled" and final["result"] is None
    me = (await user.client.get("/v1/me")).json()
    assert me["tokens"] == 10_000, "a canceled generation must not cost tokens"


async def test_failed_job_retry_keeps_counting_attempts(
    make_user: MakeUser, client: httpx.AsyncClient
) -> None:
    poor = await make_user(tokens=0)
    job = await submit(poor.client, "prompt.generate", prompt_input())
    failed = await wait_for_status(poor.client, job["id"])
    assert failed["status"] == "failed" and failed["attempts"] == 1
    assert failed["error"]["code"] == "insufficient_tokens"
    retried = (await poor.client.post(f"/v1/jobs/{job['id']}/retry")).json()
    assert retried["status"] == "queued" and retried["error"] is None and retried["attempts"] == 1
    again = await wait_for_status(poor.client, job["id"])
    assert again["status"] == "failed" and again["attempts"] == 2
