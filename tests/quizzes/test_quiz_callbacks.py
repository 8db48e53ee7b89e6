"""Callbacks from a generator: who may send them, what they change, and that nothing counts twice."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from jobrelay import signing
from jobrelay.services import Services
from tests.conftest import MakeUser, Stack
from tests.conftest import TestUser as User
from tests.quizzes.helpers import (
    admin_client,
    audit_of,
    events_of,
    question,
    question_count,
    result_body,
    signed,
    waiting_quiz,
    with_token,
)
from tests.support.jobs import wait_for_status

SpawnStack = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def generator_http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """What the generator holds: the service's address, no API key."""
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        yield http


@pytest.fixture
def secret(stack: Stack) -> str:
    return stack.env["JOBRELAY_GENERATOR_SECRET"]


@pytest.fixture
def token(stack: Stack) -> str:
    return stack.env["JOBRELAY_AI_WORKER_TOKEN"]


@pytest.fixture
async def user(make_user: MakeUser) -> User:
    return await make_user()


async def _unchanged(user: User, before: dict[str, Any]) -> None:
    after = (await user.client.get(f"/v1/jobs/{before['id']}")).json()
    for key in ("status", "progress", "message", "result", "error", "external_id"):
        assert after[key] == before[key], key


# --- Signatures and tokens ---------------------------------------------------------------


async def test_signed_progress_is_applied_and_streamed(
    user: User, generator_http: httpx.AsyncClient, secret: str
) -> None:
    job = await waiting_quiz(user.client)
    progress = {"status": "processing", "progress": 40, "message": "Generating questions..."}
    response = await generator_http.post(f"/v1/callbacks/{job['id']}", **signed(secret, progress))
    assert response.status_code == 200, response.text
    assert response.json()["progress"] == 40
    current = (await user.client.get(f"/v1/jobs/{job['id']}")).json()
    assert (current["status"], current["progress"]) == ("processing", 40)
    assert current["message"] == "Generating questions..."
    last = (await events_of(user.client, job["id"]))[-1]
    assert (last["type"], last["progress"]) == ("progress", 40)


def _tamper(payload_bytes: bytes) -> bytes:
    return payload_bytes.replace(b'"progress": 40', b'"progress": 41')


SIGNATURE_CASES: dict[str, Callable[[str, bytes], dict[str, Any]]] = {
    "wrong_secret": lambda secret, body: signed(signing.new_secret(), body),
    "one_byte_changed": lambda secret, body: {
        **signed(secret, body),
        "content": _tamper(body),
    },
    "signature_header_missing": lambda secret, body: {
        "content": body,
        "headers": {
            k: v for k, v in signed(secret, body)["headers"].items() if k != "webhook-signature"
        },
    },
    "six_minutes_old": lambda secret, body: signed(secret, body, timestamp=int(time.time()) - 360),
    "six_minutes_ahead": lambda secret, body: signed(
        secret, body, timestamp=int(time.time()) + 360
    ),
}
EXPECTED_REASON = {
    "wrong_secret": "bad_signature",
    "one_byte_changed": "bad_signature",
    "signature_header_missing": "missing_headers",
    "six_minutes_old": "timestamp_too_old",
    "six_minutes_ahead": "timestamp_too_new",
}


@pytest.mark.parametrize("case", sorted(SIGNATURE_CASES))
async def test_bad_signatures_are_refused_audited_and_change_nothing(
    case: str, user: User, generator_http: httpx.AsyncClient, secret: str, token: str
) -> None:
    job = await waiting_quiz(user.client)
    body = json.dumps({"status": "processing", "progress": 40, "message": "x"}).encode()
    request = SIGNATURE_CASES[case](secret, body)
    # A valid legacy token alongside must not rescue a bad signature.
    request["headers"] = {**request["headers"], "X-AI-Worker-Token": token}
    response = await generator_http.post(f"/v1/callbacks/{job['id']}", **request)
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_signature"
    assert error["details"] == [{"reason": EXPECTED_REASON[case]}]
    await _unchanged(user, job)
    audit = await audit_of(user.client, job["id"])
    assert [(c["outcome"], c["status_code"], c["applied"]) for c in audit] == [
        ("invalid_signature", 401, False)
    ]
    assert audit[0]["body"] == request["content"].decode()
    assert audit[0]["headers"].get("x-ai-worker-token") == "[redacted]"


async def test_no_credentials_at_all_is_401(user: User, generator_http: httpx.AsyncClient) -> None:
    job = await waiting_quiz(user.client)
    response = await generator_http.post(
        f"/v1/callbacks/{job['id']}", json={"status": "processing", "progress": 50}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_credentials"
    await _unchanged(user, job)


async def test_wrong_token_is_401(
    user: User, generator_http: httpx.AsyncClient, token: str
) -> None:
    job = await waiting_quiz(user.client)
    progress = {"status": "processing", "progress": 50, "message": "x"}
    response = await generator_http.post(
        f"/v1/callbacks/{job['id']}", **with_token(token + "x", progress)
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"
    await _unchanged(user, job)


async def test_two_signatures_during_rotation_are_accepted(
    user: User, generator_http: httpx.AsyncClient, secret: str
) -> None:
    job = await waiting_quiz(user.client)
    body = json.dumps({"status": "processing", "progress": 30, "message": "rotating"}).encode()
    with_new = signed(secret, body, msg_id="msg_rotation")
    with_old = signing.sign(
        signing.new_secret(), "msg_rotation", int(with_new["headers"]["webhook-timestamp"]), body
    )
    both = f"{with_old['webhook-signature']} {with_new['headers']['webhook-signature']}"
    with_new["headers"]["webhook-signature"] = both
    response = await generator_http.post(f"/v1/callbacks/{job['id']}", **with_new)
    assert response.status_code == 200, response.text
    assert (await user.client.get(f"/v1/jobs/{job['id']}")).json()["progress"] == 30


async def test_replayed_webhook_id_has_no_second_effect(
    user: User, generator_http: httpx.AsyncClient, secret: str, services: Services
) -> None:
    job = await waiting_quiz(user.client, quiz_size=4)
    progress = signed(secret, {"status": "processing", "progress": 60, "message": "once"})
    first = await generator_http.post(f"/v1/callbacks/{job['id']}", **progress)
    again = await generator_http.post(f"/v1/callbacks/{job['id']}", **progress)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["replayed"] is True

    result = signed(secret, result_body(job, 4))
    saved = await generator_http.post(f"/v1/callbacks/{job['id']}", **result)
    resent = await generator_http.post(f"/v1/callbacks/{job['id']}", **result)
    assert saved.status_code == 201, saved.text
    assert resent.status_code == 201 and resent.json()["replayed"] is True
    assert resent.json()["saved"] == saved.json()["saved"] == 4
    assert await question_count(services, job["id"]) == 4

    events = await events_of(user.client, job["id"])
    assert len([e for e in events if e["message"] == "once"]) == 1
    assert len([e for e in events if e["status"] == "completed"]) == 1
    audit = await audit_of(user.client, job["id"])
    assert [c["outcome"] for c in audit] == ["applied", "replayed", "applied", "replayed"]


async def test_token_only_callbacks_are_refused_when_switched_off(
    spawn_stack: SpawnStack,
) -> None:
    strict = await spawn_stack(generator=True, ai_worker_token_enabled="false")
    secret = strict.env["JOBRELAY_GENERATOR_SECRET"]
    token = strict.env["JOBRELAY_AI_WORKER_TOKEN"]
    progress = {"status": "processing", "progress": 20, "message": "legacy"}
    async with admin_client(strict) as owner, httpx.AsyncClient(base_url=strict.api_url) as http:
        job = await waiting_quiz(owner)
        refused = await http.post(f"/v1/callbacks/{job['id']}", **with_token(token, progress))
        legacy = await http.post("/api/ai/receive/", **with_token(token, result_body(job, 3)))
        accepted = await http.post(f"/v1/callbacks/{job['id']}", **signed(secret, progress))
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "token_auth_disabled"
        assert legacy.status_code == 401
        assert accepted.status_code == 200, accepted.text
        current = (await owner.get(f"/v1/jobs/{job['id']}")).json()
        assert (current["status"], current["progress"]) == ("processing", 20)


async def test_the_receiver_accepts_an_old_secret_while_rotating(
    spawn_stack: SpawnStack,
) -> None:
    old, new = signing.new_secret(), signing.new_secret()
    rotating = await spawn_stack(generator=True, generator_secret=f"{new} {old}")
    async with (
        admin_client(rotating) as owner,
        httpx.AsyncClient(base_url=rotating.api_url) as http,
    ):
        job = await waiting_quiz(owner)
        old_signed = await http.post(
            f"/v1/callbacks/{job['id']}",
            **signed(old, {"status": "processing", "progress": 20, "message": "old key"}),
        )
        new_signed = await http.post(
            f"/v1/callbacks/{job['id']}",
            **signed(new, {"status": "processing", "progress": 30, "message": "new key"}),
        )
        stranger = await http.post(
            f"/v1/callbacks/{job['id']}",
            **signed(signing.new_secret(), {"status": "processing", "progress": 40}),
        )
    assert (old_signed.status_code, new_signed.status_code) == (200, 200)
    assert stranger.status_code == 401


# --- The original AI worker ---------------------------------------------------------------


async def test_original_ai_worker_payload_on_the_original_route(
    user: User, generator_http: httpx.AsyncClient, token: str, services: Services
) -> None:
    job = await waiting_quiz(user.client, quiz_size=11)
    response = await generator_http.post(
        "/api/ai/receive/", **with_token(token, result_body(job, 11))
    )
    assert response.status_code == 201, response.text
    assert response.json() == {
        "status": "ok",
        "saved": 11,
        "task_id": job["external_id"],
        "user_id": user.id,
    }
    done = (await user.client.get(f"/v1/jobs/{job['id']}")).json()
    assert done["status"] == "completed"
    result = (await user.client.get(f"/v1/jobs/{job['id']}/result")).json()
    assert result["questions_created"] == 11
    assert result["processing_time_sec"] == 315
    assert result["questions"][0]["options"]["B"].startswith("Code reviews")
    assert await question_count(services, job["id"]) == 11
    audit = await audit_of(user.client, job["id"])
    assert [(c["route"], c["kind"], c["webhook_id"]) for c in audit] == [
        ("/api/ai/receive/", "result", None)
    ]


async def test_original_route_finds_the_job_by_its_id_too(
    user: User, generator_http: httpx.AsyncClient, token: str
) -> None:
    job = await waiting_quiz(user.client, quiz_size=2)
    body = result_body(job, 2, worker_task_id=job["id"])
    response = await generator_http.post("/api/ai/receive/", **with_token(token, body))
    assert response.status_code == 201, response.text
    assert (await user.client.get(f"/v1/jobs/{job['id']}")).json()["status"] == "completed"


async def test_original_route_without_or_with_unknown_task_id(
    user: User, generator_http: httpx.AsyncClient, token: str
) -> None:
    job = await waiting_quiz(user.client, quiz_size=2)
    missing = {k: v for k, v in result_body(job, 2).items() if k != "worker_task_id"}
    unknown = result_body(job, 2, worker_task_id="gen-nobody")
    no_id = await generator_http.post("/api/ai/receive/", **with_token(token, missing))
    nobody = await generator_http.post("/api/ai/receive/", **with_token(token, unknown))
    assert no_id.status_code == 422
    assert nobody.status_code == 404
    assert nobody.json()["error"]["code"] == "job_not_found"
    await _unchanged(user, job)


async def test_legacy_generator_completes_a_quiz_through_the_original_route(
    user: User,
) -> None:
    from tests.quizzes.helpers import QUIZ
    from tests.support.jobs import submit

    job_input = {**QUIZ, "quiz_size": 3, "extra_instructions": "[gen:legacy]"}
    job = await submit(user.client, "quiz.generate", job_input)
    done = await wait_for_status(user.client, job["id"], timeout=30)
    assert done["status"] == "completed", done
    audit = await audit_of(user.client, job["id"])
    assert {c["route"] for c in audit} == {"/api/ai/receive/"}
    assert audit[-1]["kind"] == "result" and audit[-1]["status_code"] == 201


# --- Bodies ------------------------------------------------------------------------------


async def test_invalid_questions_are_422_with_each_index_and_nothing_is_saved(
    user: User, generator_http: httpx.AsyncClient, secret: str, services: Services
) -> None:
    job = await waiting_quiz(user.client, quiz_size=5)
    body = result_body(job, 5)
    body["questions"][1] = question(1, correct_answer="E")
    del body["questions"][2]["options"]["D"]
    body["questions"][4] = question(4, score=-1, sentence="")
    response = await generator_http.post(f"/v1/callbacks/{job['id']}", **signed(secret, body))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_questions"
    by_index = {d["index"]: d for d in error["details"]}
    assert sorted(by_index) == [1, 2, 4]
    assert "correct_answer" in by_index[1]["reason"]
    assert "options.D" in by_index[2]["reason"]
    assert "score" in by_index[4]["reason"] and "sentence" in by_index[4]["reason"]
    assert await question_count(services, job["id"]) == 0
    await _unchanged(user, job)

    fixed = await generator_http.post(
        f"/v1/callbacks/{job['id']}", **signed(secret, result_body(job, 5))
    )
    assert fixed.status_code == 201
    assert await question_count(services, job["id"]) == 5
    outcomes = [c["outcome"] for c in await audit_of(user.client, job["id"])]
    assert outcomes == ["invalid_questions", "applied"]


@pytest.mark.parametrize(
    "body",
    [
        {"status": "processing", "progress": 140},
        {"status": "processing", "progress": 40, "colour": "blue"},
        {"status": "failed"},
        {"status": "done"},
        {"questions": []},
        {"questions": "none"},
    ],
)
async def test_malformed_bodies_are_422(
    body: dict[str, Any], user: User, generator_http: httpx.AsyncClient, secret: str
) -> None:
    job = await waiting_quiz(user.client, quiz_size=2)
    response = await generator_http.post(f"/v1/callbacks/{job['id']}", **signed(secret, body))
    assert response.status_code == 422, response.text
    await _unchanged(user, job)


async def test_non_json_body_is_422_and_audited(
    user: User, generator_http: httpx.AsyncClient, secret: str
) -> None:
    job = await waiting_quiz(user.client, quiz_size=2)
    response = await generator_http.post(f"/v1/callbacks/{job['id']}", **signed(secret, b"{oops"))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_json"
    audit = await audit_of(user.client, job["id"])
    assert [(c["outcome"], c["body"]) for c in audit] == [("invalid_json", "{oops")]


async def test_failure_callback_fails_the_job(
    user: User, generator_http: httpx.AsyncClient, secret: str
) -> None:
    job = await waiting_quiz(user.client)
    failure = {"status": "failed", "error": "GPU out of memory"}
    response = await generator_http.post(f"/v1/callbacks/{job['id']}", **signed(secret, failure))
    assert response.status_code == 200, response.text
    failed = (await user.client.get(f"/v1/jobs/{job['id']}")).json()
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "generator_failed", "message": "GPU out of memory"}


async def test_a_callback_from_another_task_or_user_is_refused(
    user: User, generator_http: httpx.AsyncClient, secret: str
) -> None:
    job = await waiting_quiz(user.client, quiz_size=2)
    stale = result_body(job, 2, worker_task_id="gen-from-an-earlier-attempt")
    foreign = result_body(job, 2, user_id=user.id + 1000)
    stale_reply = await generator_http.post(f"/v1/callbacks/{job['id']}", **signed(secret, stale))
    foreign_reply = await generator_http.post(
        f"/v1/callbacks/{job['id']}", **signed(secret, foreign)
    )
    assert stale_reply.status_code == 409
    assert stale_reply.json()["error"]["code"] == "stale_task"
    assert foreign_reply.status_code == 422
    assert foreign_reply.json()["error"]["code"] == "user_mismatch"
    await _unchanged(user, job)


async def test_unknown_job_is_404_and_still_audited(
    generator_http: httpx.AsyncClient, secret: str, services: Services
) -> None:
    from sqlalchemy import text

    for job_ref in ("00000000-0000-4000-8000-000000000000", "not-a-uuid"):
        response = await generator_http.post(
            f"/v1/callbacks/{job_ref}",
            **signed(secret, {"status": "processing", "progress": 1, "message": job_ref}),
        )
        assert response.status_code == 404
        async with services.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT job_id, outcome FROM callbacks WHERE route = :route"),
                {"route": f"/v1/callbacks/{job_ref}"},
            )
            assert [(r.job_id, r.outcome) for r in rows] == [(None, "job_not_found")]


# --- Late and concurrent ----------------------------------------------------------------


async def test_late_callbacks_are_409_and_change_nothing(
    user: User, generator_http: httpx.AsyncClient, secret: str, services: Services
) -> None:
    job = await waiting_quiz(user.client, quiz_size=3)
    assert (
        await generator_http.post(
            f"/v1/callbacks/{job['id']}", **signed(secret, result_body(job, 3))
        )
    ).status_code == 201
    done = (await user.client.get(f"/v1/jobs/{job['id']}")).json()
    late_progress = await generator_http.post(
        f"/v1/callbacks/{job['id']}",
        **signed(secret, {"status": "processing", "progress": 99, "message": "late"}),
    )
    late_result = await generator_http.post(
        f"/v1/callbacks/{job['id']}", **signed(secret, result_body(job, 5))
    )
    late_failure = await generator_http.post(
        f"/v1/callbacks/{job['id']}", **signed(secret, {"status": "failed", "error": "late"})
    )
    for response in (late_progress, late_result, late_failure):
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "job_finished"
    await _unchanged(user, done)
    assert await question_count(services, job["id"]) == 3
    outcomes = [c["outcome"] for c in await audit_of(user.client, job["id"])]
    assert outcomes == ["applied", "job_finished", "job_finished", "job_finished"]


async def test_callback_for_a_canceled_job_is_409(
    user: User, generator_http: httpx.AsyncClient, secret: str, services: Services
) -> None:
    job = await waiting_quiz(user.client, quiz_size=3)
    assert (await user.client.post(f"/v1/jobs/{job['id']}/cancel")).status_code == 200
    response = await generator_http.post(
        f"/v1/callbacks/{job['id']}", **signed(secret, result_body(job, 3))
    )
    assert response.status_code == 409
    assert (await user.client.get(f"/v1/jobs/{job['id']}")).json()["status"] == "canceled"
    assert await question_count(services, job["id"]) == 0


@pytest.mark.parametrize("auth", ["signature", "token"])
async def test_twenty_identical_callbacks_at_once_apply_once(
    auth: str,
    user: User,
    generator_http: httpx.AsyncClient,
    secret: str,
    token: str,
    services: Services,
) -> None:
    job = await waiting_quiz(user.client, quiz_size=7)
    body = result_body(job, 7)
    request = signed(secret, body) if auth == "signature" else with_token(token, body)
    responses = await asyncio.gather(
        *(generator_http.post(f"/v1/callbacks/{job['id']}", **request) for _ in range(20))
    )
    codes = sorted(r.status_code for r in responses)
    assert all(code < 500 for code in codes), [r.text for r in responses]
    assert codes.count(201) >= 1
    if auth == "signature":
        assert codes == [201] * 20, "a resend of the applied message gets the same answer"
    else:
        assert codes == [201] + [409] * 19
    assert await question_count(services, job["id"]) == 7
    events = await events_of(user.client, job["id"])
    assert len([e for e in events if e["status"] == "completed"]) == 1
    applied = [c for c in await audit_of(user.client, job["id"]) if c["outcome"] == "applied"]
    assert len(applied) == 1


# --- Reading the audit trail ------------------------------------------------------------


async def test_callback_audit_is_owner_scoped(
    make_user: MakeUser, generator_http: httpx.AsyncClient, secret: str
) -> None:
    owner, stranger = await make_user(), await make_user()
    job = await waiting_quiz(owner.client, quiz_size=2)
    await generator_http.post(
        f"/v1/callbacks/{job['id']}",
        **signed(secret, {"status": "processing", "progress": 20, "message": "x"}),
    )
    assert (await stranger.client.get(f"/v1/jobs/{job['id']}/callbacks")).status_code == 404
    mine = (await owner.client.get(f"/v1/jobs/{job['id']}/callbacks")).json()["items"]
    assert len(mine) == 1
    assert set(mine[0]) >= {
        "id",
        "route",
        "webhook_id",
        "kind",
        "outcome",
        "status_code",
        "received_at",
        "body",
    }
