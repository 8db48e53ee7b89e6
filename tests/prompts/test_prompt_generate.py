"""`prompt.generate`: the seven steps in order, tokens taken once and only on success, the
model's failures retried and then a fallback, account checks."""

from __future__ import annotations

import asyncio
import uuid

from jobrelay.prompts.tasks import RUNNER
from jobrelay.runtime import runner
from jobrelay.services import Services
from tests.conftest import MakeUser, Stack
from tests.support.jobs import prompt_input, submit, wait_for_status
from tests.support.peers import FakeChatModel, serve

STEPS = [
    ("status", "queued", 0, "Task queued, waiting to start..."),
    ("status", "processing", 10, "Initializing AI generation..."),
    ("progress", "processing", 30, "Checking tokens..."),
    ("progress", "processing", 50, "Generating enhanced prompt with AI..."),
    ("progress", "processing", 70, "Waiting for AI response..."),
    ("progress", "processing", 90, "Finalizing..."),
    ("status", "completed", 100, "Prompt generated successfully"),
]


async def events_of(client, job_id: str) -> list[dict]:
    response = await client.get(f"/v1/jobs/{job_id}/events", headers={"Accept": "application/json"})
    return response.json()["items"]


async def test_steps_in_order_and_tokens_charged(make_user: MakeUser) -> None:
    user = await make_user(tokens=1000)
    job = await submit(user.client, "prompt.generate", prompt_input("Teach me SQL joins"))
    done = await wait_for_status(user.client, job["id"])
    assert done["status"] == "completed"
    events = await events_of(user.client, job["id"])
    assert [(e["type"], e["status"], e["progress"], e["message"]) for e in events] == STEPS
    result = done["result"]
    assert result["fallback"] is False
    assert result["tokens_used"] == 700
    assert result["model"] == "offline"
    assert "Teach me SQL joins" in result["prompt"]
    assert (await user.client.get("/v1/me")).json()["tokens"] == 300


async def test_insufficient_tokens_fails_and_costs_nothing(make_user: MakeUser) -> None:
    user = await make_user(tokens=699)
    job = await submit(user.client, "prompt.generate", prompt_input())
    failed = await wait_for_status(user.client, job["id"])
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "insufficient_tokens"
    assert "699" in failed["error"]["message"]
    assert (await user.client.get("/v1/me")).json()["tokens"] == 699
    assert [e["progress"] for e in await events_of(user.client, job["id"])][:3] == [0, 10, 30]


async def test_expired_subscription_fails(make_user: MakeUser) -> None:
    user = await make_user(tokens=5000, subscription_expires_at="2020-01-01T00:00:00Z")
    job = await submit(user.client, "prompt.generate", prompt_input())
    failed = await wait_for_status(user.client, job["id"])
    assert failed["error"]["code"] == "subscription_expired"
    assert (await user.client.get("/v1/me")).json()["tokens"] == 5000


async def test_tokens_charged_once_when_the_job_runs_twice(
    make_user: MakeUser, spawn_stack
) -> None:
    idle: Stack = await spawn_stack(workers=0)
    user = await make_user(tokens=1400, on=idle)
    job = await submit(user.client, "prompt.generate", prompt_input())
    registry = {"prompt.generate": RUNNER}
    services = await Services.open(idle.settings, pool_size=4)

    job_id = uuid.UUID(job["id"])
    outcomes = await asyncio.gather(
        *[runner.run(services, registry, job_id, delivery=1) for _ in range(2)]
    )
    assert outcomes == [None, None]
    await runner.run(services, registry, job_id, delivery=2)
    await services.close()
    done = await wait_for_status(user.client, job["id"])
    assert done["status"] == "completed" and done["attempts"] == 1
    assert (await user.client.get("/v1/me")).json()["tokens"] == 700
    statuses = [
        e["status"] for e in await events_of(user.client, job["id"]) if e["type"] == "status"
    ]
    assert statuses == ["queued", "processing", "completed"]


async def test_openai_compatible_model_is_used(make_user: MakeUser, spawn_stack) -> None:
    model = FakeChatModel(reply="You are a patient maths tutor.")
    with serve(model.app) as url:
        stack: Stack = await spawn_stack(
            llm_base_url=f"{url}/v1", llm_model="tutor-1", llm_api_key="sk-test"
        )
        user = await make_user(tokens=700, on=stack)
        job = await submit(user.client, "prompt.generate", prompt_input("fractions"))
        done = await wait_for_status(user.client, job["id"])
    assert done["result"] == {
        "prompt": "You are a patient maths tutor.",
        "fallback": False,
        "tokens_used": 700,
        "model": "tutor-1",
    }
    assert len(model.calls) == 1
    call = model.calls[0]
    assert call["authorization"] == "Bearer sk-test"
    assert call["body"]["model"] == "tutor-1"
    assert call["body"]["messages"][-1] == {"role": "user", "content": "fractions"}


async def test_model_errors_are_retried_twice(make_user: MakeUser, spawn_stack) -> None:
    model = FakeChatModel(failures=2)
    with serve(model.app) as url:
        stack: Stack = await spawn_stack(llm_base_url=f"{url}/v1")
        user = await make_user(tokens=700, on=stack)
        job = await submit(user.client, "prompt.generate", prompt_input())
        done = await wait_for_status(user.client, job["id"])
    assert len(model.calls) == 3
    assert done["result"]["fallback"] is False
    assert (await user.client.get("/v1/me")).json()["tokens"] == 0


async def test_fallback_after_retries_run_out(make_user: MakeUser, spawn_stack) -> None:
    model = FakeChatModel(failures=100)
    with serve(model.app) as url:
        stack: Stack = await spawn_stack(llm_base_url=f"{url}/v1")
        user = await make_user(tokens=700, on=stack)
        job = await submit(user.client, "prompt.generate", prompt_input("Plan a trip"))
        done = await wait_for_status(user.client, job["id"])
    assert len(model.calls) == 3
    assert done["status"] == "completed"
    assert done["result"]["fallback"] is True
    assert done["result"]["tokens_used"] == 0
    assert "Plan a trip" in done["result"]["prompt"]
    assert (await user.client.get("/v1/me")).json()["tokens"] == 700
