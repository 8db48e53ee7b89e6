"""Idempotency-Key: same body replays the job, a different body is 422, concurrent use is safe."""

from __future__ import annotations

import asyncio
import uuid

from tests.conftest import MakeUser
from tests.jobs.test_api_contract import assert_error_shape
from tests.support.jobs import prompt_input


async def test_same_key_same_body_replays(make_user: MakeUser) -> None:
    user = await make_user()
    key = str(uuid.uuid4())
    body = {"kind": "prompt.generate", "input": prompt_input("idem")}
    first = await user.client.post("/v1/jobs", json=body, headers={"Idempotency-Key": key})
    second = await user.client.post("/v1/jobs", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 202 and second.status_code in (200, 202)
    assert second.json()["id"] == first.json()["id"]
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["location"] == first.headers["location"]
    jobs = (await user.client.get("/v1/jobs")).json()["items"]
    assert [j["id"] for j in jobs] == [first.json()["id"]]


async def test_same_key_different_body_is_422(make_user: MakeUser) -> None:
    user = await make_user()
    key = str(uuid.uuid4())
    await user.client.post(
        "/v1/jobs",
        json={"kind": "prompt.generate", "input": prompt_input("a")},
        headers={"Idempotency-Key": key},
    )
    response = await user.client.post(
        "/v1/jobs",
        json={"kind": "prompt.generate", "input": prompt_input("b")},
        headers={"Idempotency-Key": key},
    )
    assert_error_shape(response, 422, "idempotency_key_reused")


async def test_keys_are_per_user(make_user: MakeUser) -> None:
    alice = await make_user()
    bob = await make_user()
    key = str(uuid.uuid4())
    body = {"kind": "prompt.generate", "input": prompt_input("shared key")}
    a = await alice.client.post("/v1/jobs", json=body, headers={"Idempotency-Key": key})
    b = await bob.client.post("/v1/jobs", json=body, headers={"Idempotency-Key": key})
    assert a.status_code == b.status_code == 202
    assert a.json()["id"] != b.json()["id"]


async def test_concurrent_same_key_makes_one_job(make_user: MakeUser) -> None:
    user = await make_user()
    key = str(uuid.uuid4())
    body = {"kind": "prompt.generate", "input": prompt_input("race")}
    responses = await asyncio.gather(
        *[
            user.client.post("/v1/jobs", json=body, headers={"Idempotency-Key": key})
            for _ in range(20)
        ]
    )
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 202, 409}, statuses
    ids = {r.json()["id"] for r in responses if r.status_code in (200, 202)}
    assert len(ids) == 1
    for r in responses:
        if r.status_code == 409:
            assert_error_shape(r, 409, "idempotency_key_in_flight")
    jobs = (await user.client.get("/v1/jobs")).json()["items"]
    assert [j["id"] for j in jobs] == list(ids)
