"""HTTP clients of a test stack: its admin, and users made through the admin API."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.conftest import Stack


def client_for(stack: Stack, key: str, *, timeout: float = 30) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=timeout
    )


async def create_user(stack: Stack, **body: Any) -> dict[str, Any]:
    """`{"user", "api_key"}` of a new user on `stack`."""
    async with client_for(stack, stack.admin_key) as admin:
        response = await admin.post(
            "/v1/users", json={"name": "reliability", "role": "user", "tokens": 10**6, **body}
        )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@contextlib.asynccontextmanager
async def admin_and_user(
    stack: Stack, **user: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    made = await create_user(stack, **user)
    async with (
        client_for(stack, stack.admin_key) as admin,
        client_for(stack, made["api_key"]) as client,
    ):
        yield admin, client


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The contract's error shape, with this status (and code)."""
    assert response.status_code == status, (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, body
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], list)
    if code is not None:
        assert error["code"] == code, body
    return body


@dataclass
class Probe:
    """Reads and submissions sent all through an outage and the recovery after it: every
    answer must be a success or a `503` in the error shape, never a 500 and never a hang."""

    client: httpx.AsyncClient
    job_id: str
    answers: list[tuple[str, int, str | None]] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)
    slowest: float = 0.0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        turn = 0
        while not self._stop.is_set():
            turn += 1
            if turn % 4 == 0:
                method, path = "POST", "/v1/jobs"
                body: dict[str, Any] | None = {
                    "kind": "prompt.generate",
                    "input": {"manual_prompt": f"probe {turn}"},
                    "metadata": {"probe": True},
                }
            else:
                method, path, body = "GET", f"/v1/jobs/{self.job_id}", None
            started = time.monotonic()
            response = await self.client.request(method, path, json=body)
            self.slowest = max(self.slowest, time.monotonic() - started)
            code = None
            if method == "POST" and response.status_code == 202:
                self.job_ids.append(response.json()["id"])
            if response.status_code >= 400:
                code = assert_error(response, response.status_code)["error"]["code"]
            self.answers.append((method, response.status_code, code))
            await asyncio.sleep(0.05)

    def assert_only_successes_and_503(self) -> None:
        unexpected = [a for a in self.answers if a[1] not in (200, 202, 503)]
        assert not unexpected, unexpected
        assert any(status == 503 for _, status, _ in self.answers), "the outage was not seen"
