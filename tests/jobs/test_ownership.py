"""A user sees and acts on its own jobs only; another user's job is 404, never 403."""

from __future__ import annotations

import httpx

from tests.conftest import MakeUser
from tests.jobs.test_api_contract import assert_error_shape
from tests.support.jobs import prompt_input, submit, wait_for_status


async def test_user_b_cannot_touch_user_a_jobs(make_user: MakeUser) -> None:
    alice = await make_user()
    bob = await make_user()
    job = await submit(alice.client, "prompt.generate", prompt_input())
    job_id = job["id"]
    for method, path in [
        ("GET", f"/v1/jobs/{job_id}"),
        ("GET", f"/v1/jobs/{job_id}/result"),
        ("POST", f"/v1/jobs/{job_id}/cancel"),
        ("POST", f"/v1/jobs/{job_id}/retry"),
    ]:
        assert_error_shape(await bob.client.request(method, path), 404, "job_not_found")
    events = await bob.client.get(
        f"/v1/jobs/{job_id}/events", headers={"Accept": "application/json"}
    )
    assert_error_shape(events, 404, "job_not_found")
    listed = (await bob.client.get("/v1/jobs", params={"limit": 100})).json()["items"]
    assert job_id not in {j["id"] for j in listed}
    filtered = (await bob.client.get("/v1/jobs", params={"user_id": alice.id})).json()["items"]
    assert filtered == []
    assert (await alice.client.get(f"/v1/jobs/{job_id}")).status_code == 200


async def test_admin_sees_all_and_submits_on_behalf(
    make_user: MakeUser, client: httpx.AsyncClient
) -> None:
    alice = await make_user()
    job = await submit(alice.client, "prompt.generate", prompt_input())
    assert (await client.get(f"/v1/jobs/{job['id']}")).json()["user_id"] == alice.id
    on_behalf = await submit(client, "prompt.generate", prompt_input(), user_id=alice.id)
    assert on_behalf["user_id"] == alice.id
    assert (await alice.client.get(f"/v1/jobs/{on_behalf['id']}")).status_code == 200
    unknown = await client.post(
        "/v1/jobs", json={"kind": "prompt.generate", "input": prompt_input(), "user_id": 10**12}
    )
    assert_error_shape(unknown, 422, "unknown_user")
    await wait_for_status(client, on_behalf["id"])


async def test_user_cannot_submit_for_someone_else(make_user: MakeUser) -> None:
    alice = await make_user()
    bob = await make_user()
    response = await bob.client.post(
        "/v1/jobs", json={"kind": "prompt.generate", "input": prompt_input(), "user_id": alice.id}
    )
    assert_error_shape(response, 403)
    own = await bob.client.post(
        "/v1/jobs", json={"kind": "prompt.generate", "input": prompt_input(), "user_id": bob.id}
    )
    assert own.status_code == 202
