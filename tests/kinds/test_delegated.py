"""A kind declared as delegated (tests/kinds/sample_kinds.py: `test.echo`) against a real local
HTTP worker: the signed hand-off in the original AI worker's form, retried while the worker
answers 503, then progress and result callbacks signed with the kind's own secret."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jobrelay import signing
from tests.conftest import Stack
from tests.kinds.conftest import ECHO_SECRET, KindStack, start_worker
from tests.support.jobs import submit, wait_for_status
from tests.support.peers import serve


class EchoWorker:
    """An external worker: verifies the hand-off's signature, refuses the first one with 503."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.refused = 0
        self.app = Starlette(routes=[Route("/generate", self._generate, methods=["POST"])])

    async def _generate(self, request: Request) -> Response:
        body = await request.body()
        try:
            signing.verify([ECHO_SECRET], request.headers, body)
        except signing.SignatureError as exc:
            return JSONResponse({"error": exc.message}, status_code=401)
        if not self.refused:
            self.refused += 1
            return JSONResponse({"error": "warming up"}, status_code=503)
        self.received.append(json.loads(body))
        return JSONResponse({"task_id": f"echo-{len(self.received)}"}, status_code=202)


def _signed(secret: str, payload: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(payload).encode()
    return {
        "content": body,
        "headers": {"Content-Type": "application/json", **signing.sign_now(secret, body)},
    }


async def test_a_delegated_kind_hands_off_and_completes_from_callbacks(
    kind_stack: KindStack, admin_http: Callable[[Stack], httpx.AsyncClient]
) -> None:
    worker = EchoWorker()
    with serve(worker.app) as worker_url:
        stack = await kind_stack(echo_worker_url=worker_url)
        start_worker(stack)
        client = admin_http(stack)
        job = await submit(client, "test.echo", {"text": "hello", "times": 2})
        waiting = await wait_for_status(client, job["id"], "processing")
        for _ in range(300):
            if waiting["external_id"]:
                break
            await asyncio.sleep(0.05)
            waiting = (await client.get(f"/v1/jobs/{job['id']}")).json()

    assert worker.refused == 1, "the first hand-off was refused with 503 and retried"
    assert worker.received == [
        {
            "text": "hello",
            "times": 2,
            "user_id": job["user_id"],
            "job_id": job["id"],
            "callback_url": f"{stack.api_url}/v1/callbacks/{job['id']}",
        }
    ]
    assert waiting["external_id"] == "echo-1"
    callback_url = worker.received[0]["callback_url"]

    async with httpx.AsyncClient(timeout=30) as http:
        generator_signed = await http.post(
            callback_url,
            **_signed(
                stack.env["JOBRELAY_GENERATOR_SECRET"], {"status": "processing", "progress": 5}
            ),
        )
        assert generator_signed.status_code == 401, "another kind's secret does not verify"
        progress = await http.post(
            callback_url,
            **_signed(ECHO_SECRET, {"status": "processing", "progress": 40, "message": "Echoing"}),
        )
        assert progress.status_code == 200, progress.text
        assert (await client.get(f"/v1/jobs/{job['id']}")).json()["progress"] == 40
        invalid = await http.post(callback_url, **_signed(ECHO_SECRET, {"echo": "x"}))
        assert invalid.status_code == 422
        assert invalid.json()["error"]["code"] == "invalid_callback"
        result = await http.post(
            callback_url,
            **_signed(
                ECHO_SECRET,
                {
                    "worker_task_id": "echo-1",
                    "user_id": job["user_id"],
                    "echo": "hello hello",
                    "length": 11,
                },
            ),
        )
        assert result.status_code == 201, result.text
        assert result.json() == {"status": "ok", "task_id": "echo-1", "user_id": job["user_id"]}
        late = await http.post(
            callback_url, **_signed(ECHO_SECRET, {"status": "processing", "progress": 90})
        )
        assert late.status_code == 409

    done = (await client.get(f"/v1/jobs/{job['id']}")).json()
    assert done["status"] == "completed"
    assert done["result"] == {"echo": "hello hello", "length": 11}
    audit = (await client.get(f"/v1/jobs/{job['id']}/callbacks")).json()["items"]
    assert [(c["kind"], c["status_code"]) for c in audit] == [
        ("", 401),  # refused before its body was read
        ("progress", 200),
        ("result", 422),
        ("result", 201),
        ("progress", 409),
    ]


async def test_a_delegated_kind_with_no_worker_configured_fails_saying_which_setting(
    kind_stack: KindStack, admin_http: Callable[[Stack], httpx.AsyncClient]
) -> None:
    stack = await kind_stack()
    start_worker(stack)
    client = admin_http(stack)
    job = await submit(client, "test.echo", {"text": "anyone?"})
    failed = await wait_for_status(client, job["id"])
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "generator_not_configured"
    assert "JOBRELAY_ECHO_WORKER_URL" in failed["error"]["message"]
