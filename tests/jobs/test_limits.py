"""Per-user limits: submissions per minute (429 + Retry-After) and jobs running at once
(the rest wait in `queued`, served fairly across users). Admins are exempt from both."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import MakeUser, Stack
from tests.jobs.test_api_contract import assert_error_shape
from tests.support.jobs import prompt_input, submit, wait_for_status


async def test_rate_limit_answers_429_with_retry_after(make_user: MakeUser, spawn_stack) -> None:
    stack: Stack = await spawn_stack(workers=0, rate_limit_per_minute="3")
    user = await make_user(on=stack)
    body = {"kind": "prompt.generate", "input": prompt_input()}
    statuses = [(await user.client.post("/v1/jobs", json=body)).status_code for _ in range(3)]
    assert statuses == [202, 202, 202]
    limited = await user.client.post("/v1/jobs", json=body)
    assert_error_shape(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["retry-after"]) <= 61
    assert len((await user.client.get("/v1/jobs")).json()["items"]) == 3
    async with httpx.AsyncClient(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.admin_key}"}
    ) as admin:
        for _ in range(5):
            assert (await admin.post("/v1/jobs", json=body)).status_code == 202


async def test_running_limit_parks_the_rest_and_is_fair(make_user: MakeUser, spawn_stack) -> None:
    stack: Stack = await spawn_stack(max_running_per_user="2", prompt_step_delay="0.3")
    heavy = await make_user(tokens=10**6, on=stack)
    light = await make_user(tokens=10**6, on=stack)
    heavy_jobs = [
        await submit(heavy.client, "prompt.generate", prompt_input(f"h{i}")) for i in range(6)
    ]
    light_job = await submit(light.client, "prompt.generate", prompt_input("l"))
    peak = 0
    light_done_while_heavy_waiting = False
    for _ in range(400):
        items = (await heavy.client.get("/v1/jobs", params={"limit": 100})).json()["items"]
        running = sum(1 for j in items if j["status"] == "processing")
        peak = max(peak, running)
        light_status = (await light.client.get(f"/v1/jobs/{light_job['id']}")).json()["status"]
        if light_status == "completed" and any(j["status"] == "queued" for j in items):
            light_done_while_heavy_waiting = True
        if all(j["status"] == "completed" for j in items) and light_status == "completed":
            break
        await asyncio.sleep(0.05)
    assert peak == 2
    assert light_done_while_heavy_waiting, "one user's backlog must not hold another user's job"
    for job in heavy_jobs:
        assert (await wait_for_status(heavy.client, job["id"]))["status"] == "completed"


async def test_prefer_wait_returns_the_finished_job(make_user: MakeUser) -> None:
    user = await make_user()
    response = await user.client.post(
        "/v1/jobs",
        json={"kind": "prompt.generate", "input": prompt_input()},
        headers={"Prefer": "wait=20"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "completed"
    assert response.headers["location"] == f"/v1/jobs/{response.json()['id']}"


async def test_prefer_wait_times_out_with_202(make_user: MakeUser, spawn_stack) -> None:
    idle: Stack = await spawn_stack(workers=0)
    user = await make_user(on=idle)
    started = asyncio.get_running_loop().time()
    response = await user.client.post(
        "/v1/jobs",
        json={"kind": "prompt.generate", "input": prompt_input()},
        headers={"Prefer": "wait=1"},
    )
    elapsed = asyncio.get_running_loop().time() - started
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert 0.9 <= elapsed < 5
