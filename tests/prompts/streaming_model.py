"""A real local OpenAI-compatible `/chat/completions` endpoint that streams its answer slowly.

With `stream: true` it sends `chat.completion.chunk` server-sent events, one word every `pause`
seconds, then `data: [DONE]`; without it, the whole completion as JSON. It can hold the stream
after some words until the test lets it go (`hold_after`, `release`), break the first streams
in the middle (`break_first`), or refuse to stream at all (`refuse_stream`).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


class StreamingChatModel:
    def __init__(
        self,
        words: list[str],
        *,
        pause: float = 0.05,
        hold_after: int | None = None,
        break_first: int = 0,
        refuse_stream: bool = False,
    ) -> None:
        self.words = words
        self.pause = pause
        self.hold_after = hold_after
        self.break_first = break_first
        self.refuse_stream = refuse_stream
        self.calls: list[dict[str, Any]] = []
        self.holding = threading.Event()  # set once the stream waits at `hold_after`
        self._released = threading.Event()
        self.app = Starlette(
            routes=[Route("/v1/chat/completions", self._complete, methods=["POST"])]
        )

    @property
    def text(self) -> str:
        return "".join(self.words)

    def release(self) -> None:
        self._released.set()

    async def _complete(self, request: Request) -> Response:
        body = await request.json()
        self.calls.append(body)
        model = body.get("model", "m")
        if not body.get("stream"):
            return JSONResponse(
                {
                    "object": "chat.completion",
                    "model": model,
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": self.text}}
                    ],
                }
            )
        if self.refuse_stream:
            error = {"error": {"message": "streaming is not supported", "type": "invalid_request"}}
            return JSONResponse(error, status_code=400)
        breaks = len(self.calls) <= self.break_first
        return StreamingResponse(self._chunks(model, breaks), media_type="text/event-stream")

    async def _chunks(self, model: str, breaks: bool) -> AsyncIterator[str]:
        for number, word in enumerate(self.words):
            if breaks and number == len(self.words) // 2:
                raise RuntimeError("the model fell over mid-stream")
            if number == self.hold_after:
                self.holding.set()
                await asyncio.to_thread(self._released.wait, 60)
            chunk = {
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}],
            }
            yield f"data: {json.dumps(chunk)}\n\n"
            await asyncio.sleep(self.pause)
        yield "data: [DONE]\n\n"
