"""The kind API as users meet it over HTTP: kinds found through JOBRELAY_KINDS are listed,
documented, validated and run like the built-ins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import Stack
from tests.kinds.conftest import KindStack, start_worker
from tests.support.jobs import submit, wait_for_status

BUILTIN = {"prompt.generate", "quiz.generate", "records.ingest"}
SAMPLE = {"test.sleep", "test.count", "test.echo"}


async def test_kinds_are_listed_documented_and_validated(
    kind_stack: KindStack, admin_http: Callable[[Stack], httpx.AsyncClient]
) -> None:
    stack = await kind_stack()
    client = admin_http(stack)

    listed = await client.get("/v1/kinds")
    assert listed.status_code == 200, listed.text
    kinds = {item["name"]: item for item in listed.json()["items"]}
    assert set(kinds) == BUILTIN | SAMPLE
    assert kinds["test.sleep"]["queue"] == "slow"
    assert kinds["test.sleep"]["deadline_seconds"] == 120
    assert kinds["test.count"]["queue"] == "default"
    assert kinds["prompt.generate"]["deadline_seconds"] == stack.settings.job_deadline_seconds
    assert kinds["quiz.generate"]["deadline_seconds"] == stack.settings.quiz_deadline_seconds
    assert kinds["test.count"]["input_schema"]["required"] == ["to"]
    assert set(kinds["test.count"]["input_schema"]["properties"]) == {"to", "fail_at", "charge"}
    assert kinds["quiz.generate"]["delegated"] and kinds["test.echo"]["delegated"]
    assert not kinds["test.count"]["delegated"]
    async with httpx.AsyncClient(base_url=stack.api_url) as anonymous:
        assert (await anonymous.get("/v1/kinds")).status_code == 401

    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    named = {
        "PromptJobCreate": "prompt.generate",
        "QuizJobCreate": "quiz.generate",
        "IngestJobCreate": "records.ingest",
        "SleepJobCreate": "test.sleep",
        "CountJobCreate": "test.count",
        "EchoJobCreate": "test.echo",
    }
    for name, kind in named.items():
        assert schemas[name]["properties"]["kind"]["const"] == kind
    assert schemas["CountJobCreate"]["properties"]["input"] == {
        "$ref": "#/components/schemas/CountInput"
    }
    body = document["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]
    mapping = body["schema"]["discriminator"]["mapping"]
    assert mapping == {kind: f"#/components/schemas/{name}" for name, kind in named.items()}
    kind_filter = next(
        p for p in document["paths"]["/v1/jobs"]["get"]["parameters"] if p["name"] == "kind"
    )
    assert set(kind_filter["schema"]["enum"]) == BUILTIN | SAMPLE

    unknown = await client.post("/v1/jobs", json={"kind": "no.such.kind", "input": {}})
    assert unknown.status_code == 422
    error = unknown.json()["error"]
    assert error["code"] == "unknown_kind"
    assert error["details"][0]["loc"] == ["body", "kind"]
    assert "test.count" in error["message"] and "prompt.generate" in error["message"]
    bad_filter = await client.get("/v1/jobs", params={"kind": "no.such.kind"})
    assert bad_filter.status_code == 422
    assert bad_filter.json()["error"]["code"] == "unknown_kind"
    assert (await client.get("/v1/jobs", params={"kind": "test.count"})).status_code == 200

    invalid = await client.post(
        "/v1/jobs", json={"kind": "test.count", "input": {"to": 0, "colour": "red"}}
    )
    assert invalid.status_code == 422
    error = invalid.json()["error"]
    assert error["code"] == "invalid_input"
    assert sorted(tuple(d["loc"]) for d in error["details"]) == [
        ("body", "input", "colour"),
        ("body", "input", "to"),
    ]
    missing = await client.post("/v1/jobs", json={"kind": "test.sleep", "input": {}})
    assert missing.status_code == 422
    assert missing.json()["error"]["details"][0]["loc"] == ["body", "input", "seconds"]


async def test_a_module_kind_runs_with_progress_a_list_result_and_a_token_charge(
    kind_stack: KindStack, admin_http: Callable[[Stack], httpx.AsyncClient]
) -> None:
    stack = await kind_stack()
    start_worker(stack)
    admin = admin_http(stack)
    created = await admin.post("/v1/users", json={"name": "counter", "role": "user", "tokens": 100})
    assert created.status_code == 201, created.text
    user = httpx.AsyncClient(
        base_url=stack.api_url,
        headers={"Authorization": f"Bearer {created.json()['api_key']}"},
        timeout=30,
    )
    async with user:
        job = await submit(user, "test.count", {"to": 4, "charge": 30})
        done = await wait_for_status(user, job["id"])
        assert done["status"] == "completed", done
        assert done["result"] == {"value": [1, 2, 3, 4]}
        assert done["message"] == "Counted"
        events = (
            await user.get(f"/v1/jobs/{job['id']}/events", headers={"Accept": "application/json"})
        ).json()["items"]
        started = next(e for e in events if e["data"].get("started"))
        assert started["message"] == "Counting..."
        steps = [(e["progress"], e["data"]["n"]) for e in events if e["type"] == "progress"]
        assert steps == [(25, 1), (50, 2), (75, 3), (100, 4)]
        assert (await user.get("/v1/me")).json()["tokens"] == 70

        failing = await submit(user, "test.count", {"to": 5, "fail_at": 3, "charge": 30})
        failed = await wait_for_status(user, failing["id"])
        assert failed["status"] == "failed"
        assert failed["error"] == {"code": "unlucky_number", "message": "Stopped at 3."}
        assert failed["attempts"] == 1, "JobFailed is not retried"
        assert (await user.get("/v1/me")).json()["tokens"] == 70, "no charge on failure"


async def test_the_handler_sees_its_job(
    kind_stack: KindStack, admin_http: Callable[[Stack], httpx.AsyncClient]
) -> None:
    stack = await kind_stack()
    start_worker(stack, "--queue", "slow")
    client = admin_http(stack)
    job = await submit(client, "test.sleep", {"seconds": 0, "label": "who am i"})
    done: dict[str, Any] = await wait_for_status(client, job["id"])
    assert done["status"] == "completed", done
    assert done["result"] == {
        "slept": 0,
        "label": "who am i",
        "job_id": job["id"],
        "attempt": 1,
        "user_id": job["user_id"],
        "kind": "test.sleep",
        "canceled": False,
    }
