"""Real local HTTP peers for the tests (an OpenAI-compatible model endpoint, receivers):
uvicorn servers on 127.0.0.1 in a background thread, recording what they were sent."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve an ASGI app on a free loopback port for the duration of the block."""
    # Bound here and handed to uvicorn, so no one can take the port between picking and binding.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("peer server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class FakeChatModel:
    """An OpenAI-compatible /chat/completions endpoint that fails the first `failures` calls."""

    def __init__(
        self, *, failures: int = 0, reply: str = "You are a tutor. Explain clearly."
    ) -> None:
        self.failures = failures
        self.reply = reply
        self.calls: list[dict[str, Any]] = []
        self.app = Starlette(
            routes=[Route("/v1/chat/completions", self._complete, methods=["POST"])]
        )

    async def _complete(self, request: Request) -> Response:
        body = await request.json()
        self.calls.append({"body": body, "authorization": request.headers.get("authorization")})
        if len(self.calls) <= self.failures:
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=503)
        return JSONResponse(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": body.get("model", "m"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": self.reply},
                        "finish_reason": "stop",
                    }
                ],
            }
        )


Handler = Callable[[Request], Awaitable[Response]]
