"""Quiz fixtures: the reference generator as a real process, a real server recording callbacks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from jobrelay import signing


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def generator_process(**env: str) -> Iterator[str]:
    """Run `jobrelay.generator` under uvicorn with `JOBRELAY_*` overrides; yield its base URL."""
    port = free_port()
    environment = {**os.environ, **{f"JOBRELAY_{k.upper()}": v for k, v in env.items()}}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "jobrelay.generator.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=environment,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if process.poll() is not None:
            raise RuntimeError(f"generator exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.05)
    raise RuntimeError("generator did not become healthy")


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
    port = free_port()
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
            return stack.enter_context(generator_process(**env))

        yield start


@pytest.fixture
def start_generator() -> Iterator[StartGenerator]:
    """Start generator processes with env overrides; all are stopped after the test."""
    with contextlib.ExitStack() as stack:

        def start(**env: str) -> str:
            return stack.enter_context(generator_process(**env))

        yield start


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    async with recording_server() as started:
        yield started
