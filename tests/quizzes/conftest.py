"""Quiz fixtures: the reference generator as a real process, a real server recording callbacks."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from jobrelay import signing
from jobrelay.embedded import free_tcp_port
from tests.support.processes import base_env, generator_process


@contextlib.contextmanager
def generator_running(**env: str) -> Iterator[str]:
    """`jobrelay generator` as a real process with `JOBRELAY_*` overrides; yields its URL."""
    proc = generator_process(
        base_env({f"JOBRELAY_{name.upper()}": value for name, value in env.items()})
    ).start()
    try:
        proc.wait_http("/health")
        assert proc.url is not None
        yield proc.url
    finally:
        proc.stop()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Recorder:
    """Records every callback; `answers` is a queue of status codes to give before 200."""

    url: str
    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, count: int, within: float = 15.0) -> list[Received]:
        async with asyncio.timeout(within):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received


@contextlib.asynccontextmanager
async def recording_server() -> AsyncIterator[Recorder]:
    """A real HTTP server on a free port that stands in for the service's callback routes."""
    port = free_tcp_port()
    recorder = Recorder(url=f"http://127.0.0.1:{port}")
    app = FastAPI()

    async def record(request: Request) -> Response:
        recorder.received.append(
            Received(request.url.path, dict(request.headers), await request.body())
        )
        recorder.arrived.set()
        status = recorder.answers.pop(0) if recorder.answers else 201
        return Response(status_code=status, content=b"{}", media_type="application/json")

    app.add_api_route("/{path:path}", record, methods=["POST"])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    for _ in range(1000):
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield recorder
    finally:
        server.should_exit = True
        await task


def signed_post_args(secret: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for `httpx` to post `payload` signed with `secret`."""
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", **signing.sign_now(secret, body)}
    return {"content": body, "headers": headers}


SignPayload = Callable[[str, dict[str, Any]], dict[str, Any]]
StartGenerator = Callable[..., str]


@pytest.fixture
def sign_payload() -> SignPayload:
    return signed_post_args


@pytest.fixture(scope="module")
def module_generator() -> Iterator[StartGenerator]:
    """Like `start_generator`, but processes live for the whole test module."""
    with contextlib.ExitStack() as stack:

        def start(**env: str) -> str:
            return stack.enter_context(generator_running(**env))

        yield start


@pytest.fixture
def start_generator() -> Iterator[StartGenerator]:
    """Start generator processes with env overrides; all are stopped after the test."""
    with contextlib.ExitStack() as stack:

        def start(**env: str) -> str:
            return stack.enter_context(generator_running(**env))

        yield start


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    async with recording_server() as started:
        yield started
