"""The job document and the jobs endpoints, field by field, as the contract fixes them."""

from __future__ import annotations

import re
import uuid

import httpx

from tests.conftest import MakeUser, Stack
from tests.support.jobs import prompt_input, submit, wait_for_status

JOB_FIELDS = {
    "id", "kind", "status", "progress", "message", "user_id", "input", "result", "error",
    "attempts", "external_id", "metadata", "webhook", "webhook_events_filter", "created_at",
    "started_at", "completed_at", "duration_seconds", "urls",
}  # fmt: skip
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def assert_error_shape(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert re.fullmatch(r"[a-z][a-z0-9_]*", body["error"]["code"])
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], list)
    if code is not None:
        assert body["error"]["code"] == code, body
    return body


async def test_submit_answers_202_with_the_whole_job(make_user: MakeUser) -> None:
    user = await make_user()
    response = await user.client.post(
        "/v1/jobs",
        json={
            "kind": "prompt.generate",
            "input": {"manual_prompt": "Write a haiku about queues"},
            "metadata": {"request_id": "r-1"},
        },
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert set(job) == JOB_FIELDS
    assert uuid.UUID(job["id"]).version == 4
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["kind"] == "prompt.generate"
    assert job["status"] == "queued"
    assert job["progress"] == 0
    assert job["message"] == "Task queued, waiting to start..."
    assert job["user_id"] == user.id
    assert job["input"] == {"manual_prompt": "Write a haiku about queues"}
    assert job["result"] is None and job["error"] is None
    assert job["attempts"] == 0
    assert job["external_id"] is None
    assert job["metadata"] == {"request_id": "r-1"}
    assert job["webhook"] is None
    assert job["webhook_events_filter"] == ["completed"]
    assert ISO_Z.match(job["created_at"])
    assert job["started_at"] is None and job["completed_at"] is None
    assert job["duration_seconds"] is None
    assert job["urls"] == {
        "self": f"/v1/jobs/{job['id']}",
        "events": f"/v1/jobs/{job['id']}/events",
        "result": f"/v1/jobs/{job['id']}/result",
        "cancel": f"/v1/jobs/{job['id']}/cancel",
    }


async def test_completed_job_has_times_duration_and_result(make_user: MakeUser) -> None:
    user = await make_user()
    job = await submit(user.client, "prompt.generate", prompt_input())
    done = await wait_for_status(user.client, job["id"])
    assert done["status"] == "completed"
    assert done["message"] == "Prompt generated successfully"
    assert done["attempts"] == 1
    assert ISO_Z.match(done["started_at"]) and ISO_Z.match(done["completed_at"])
    assert done["duration_seconds"] >= 0
    result = (await user.client.get(f"/v1/jobs/{job['id']}/result")).json()
    assert set(result) == {"prompt", "fallback", "tokens_used", "model"}
    assert result == done["result"]


async def test_result_of_unfinished_job_is_409(make_user: MakeUser, spawn_stack) -> None:
    stack: Stack = await spawn_stack(workers=0)
    user = await make_user(on=stack)
    job = await submit(user.client, "prompt.generate", prompt_input())
    response = await user.client.get(f"/v1/jobs/{job['id']}/result")
    assert_error_shape(response, 409, "job_not_completed")


async def test_list_is_newest_first_with_a_keyset_cursor(make_user: MakeUser) -> None:
    user = await make_user()
    ids = [
        (await submit(user.client, "prompt.generate", prompt_input(f"p{i}")))["id"]
        for i in range(5)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await user.client.get("/v1/jobs", params=params)).json()
        assert set(page) == {"items", "next_cursor"}
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))


async def test_list_filters_by_kind_status_and_user(
    make_user: MakeUser, client: httpx.AsyncClient
) -> None:
    alice = await make_user()
    bob = await make_user()
    job = await submit(alice.client, "prompt.generate", prompt_input())
    await wait_for_status(alice.client, job["id"])
    await submit(bob.client, "prompt.generate", prompt_input())
    completed = (await alice.client.get("/v1/jobs", params={"status": "completed"})).json()
    assert [j["id"] for j in completed["items"]] == [job["id"]]
    assert (await alice.client.get("/v1/jobs", params={"kind": "records.ingest"})).json()[
        "items"
    ] == []
    by_user = (await client.get("/v1/jobs", params={"user_id": bob.id})).json()["items"]
    assert by_user and {j["user_id"] for j in by_user} == {bob.id}


async def test_list_limit_bounds(make_user: MakeUser) -> None:
    user = await make_user()
    for bad in ("0", "101", "x"):
        assert_error_shape(await user.client.get("/v1/jobs", params={"limit": bad}), 422)
    assert_error_shape(await user.client.get("/v1/jobs", params={"status": "done"}), 422)
    assert_error_shape(
        await user.client.get("/v1/jobs", params={"cursor": "garbage!"}), 422, "invalid_cursor"
    )
    assert (await user.client.get("/v1/jobs", params={"limit": 100})).status_code == 200


async def test_events_json_list(make_user: MakeUser) -> None:
    user = await make_user()
    job = await submit(user.client, "prompt.generate", prompt_input())
    await wait_for_status(user.client, job["id"])
    response = await user.client.get(
        f"/v1/jobs/{job['id']}/events", headers={"Accept": "application/json"}
    )
    assert response.status_code == 200
    items = response.json()["items"]
    assert items[0]["type"] == "status" and items[0]["status"] == "queued"
    for event in items:
        assert set(event) == {"id", "job_id", "type", "status", "progress", "message", "at", "data"}
        assert event["job_id"] == job["id"]
    assert [e["id"] for e in items] == sorted(e["id"] for e in items)
    assert items[-1]["status"] == "completed"


async def test_auth_is_required(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url) as anonymous:
        assert_error_shape(await anonymous.get("/v1/jobs"), 401, "unauthorized")
        bad = await anonymous.get("/v1/me", headers={"Authorization": "Bearer jr_nope"})
        assert_error_shape(bad, 401, "unauthorized")


async def test_unknown_job_and_bad_id(make_user: MakeUser) -> None:
    user = await make_user()
    assert_error_shape(await user.client.get(f"/v1/jobs/{uuid.uuid4()}"), 404, "job_not_found")
    assert_error_shape(await user.client.get("/v1/jobs/not-a-uuid"), 422)
    assert_error_shape(await user.client.get("/v1/nothing-here"), 404)


async def test_me_and_users(make_user: MakeUser, client: httpx.AsyncClient) -> None:
    user = await make_user(tokens=1234, subscription_expires_at="2030-01-01T00:00:00Z")
    me = (await user.client.get("/v1/me")).json()
    assert me == {
        "id": user.id,
        "name": user.name,
        "role": "user",
        "tokens": 1234,
        "subscription_expires_at": "2030-01-01T00:00:00Z",
    }
    assert_error_shape(await user.client.get("/v1/users"), 403)
    assert_error_shape(await user.client.post("/v1/users", json={"name": "x"}), 403)
    listed = (await client.get("/v1/users", params={"limit": 100})).json()
    assert any(u["id"] == user.id for u in listed["items"])
    assert "api_key" not in str(listed)
    created = await client.post("/v1/users", json={"name": "n", "role": "root"})
    assert_error_shape(created, 422)


async def test_health_and_docs(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {
            "postgres": "ok",
            "redis": "ok",
        }
        spec = (await http.get("/openapi.json")).json()
        operation = spec["paths"]["/v1/jobs"]["post"]
        assert operation["operationId"] == "jobs-submit-job"
        assert operation["tags"] == ["jobs"]
        assert "422" in operation["responses"] and "202" in operation["responses"]
        assert (await http.get("/docs")).status_code == 200


async def test_readyz_names_what_is_down(spawn_stack) -> None:
    stack: Stack = await spawn_stack(workers=0, redis_url="redis://127.0.0.1:1/0")
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        response = await http.get("/readyz")
    body = assert_error_shape(response, 503, "not_ready")
    assert "redis" in body["error"]["message"]
    assert [d["component"] for d in body["error"]["details"]] == ["redis"]
