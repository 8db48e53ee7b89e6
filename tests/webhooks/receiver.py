"""A real webhook receiver on 127.0.0.1 for the tests: records every request and answers with
scripted statuses (200 by default), redirects included."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.peers import serve


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    peer: str


@dataclass
class Receiver:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    scripts: dict[str, list[int]] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, path: str, *statuses: int) -> None:
        """Answer the next requests to `path` with these statuses, then 200."""
        with self.lock:
            self.scripts[path] = list(statuses)

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    async def wait_for(self, path: str, count: int, timeout: float = 30) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.at(path)
            if len(got) >= count:
                return got
            await asyncio.sleep(0.05)
        raise AssertionError(f"{path} got {len(self.at(path))} requests, wanted {count}")

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        path = request.url.path
        with self.lock:
            self.received.append(
                Received(
                    path=path,
                    headers={k.lower(): v for k, v in request.headers.items()},
                    body=body,
                    at=time.monotonic(),
                    peer=request.client.host if request.client else "",
                )
            )
            script = self.scripts.get(path)
            status = script.pop(0) if script else 200
            delay = self.delays.get(path, 0.0)
        if delay:
            await asyncio.sleep(delay)
        headers = {}
        if 300 <= status < 400:
            headers["location"] = self.redirects.get(path, f"{self.url}/elsewhere")
        return Response(f"answer {status}", status_code=status, headers=headers)


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    app = Starlette(routes=[Route("/{path:path}", receiver._handle, methods=["POST", "GET"])])
    with serve(app) as url:
        receiver.url = url
        yield receiver
