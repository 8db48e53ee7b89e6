"""The model behind `prompt.generate`: any OpenAI-compatible chat-completions endpoint, or a
built-in offline provider when none is configured (so the service works with no account).

Both stream: given `on_text`, the text is handed over as it is written (`stream: true` and
server-sent chunks for an endpoint; word by word over its delay for the offline provider). An
endpoint that refuses `stream: true` is asked again without it, and not asked to stream again.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from httpx_sse import aconnect_sse

from jobrelay.config import Settings

SYSTEM_PROMPT = (
    "You improve prompts. Rewrite the user's prompt so that a language model gets a clear role, "
    "the task, the context it needs, constraints, and the expected output format. "
    "Answer with the improved prompt only."
)


class AIError(Exception):
    """The model did not give a usable answer; worth retrying."""


@dataclass(frozen=True)
class Completion:
    text: str
    model: str


OnText = Callable[[str], Awaitable[None]]


class PromptModel(Protocol):
    name: str

    async def enhance(self, manual_prompt: str, on_text: OnText | None = None) -> Completion: ...


class _TrimmedText:
    """Hands text on as it comes, but as the stripped whole: no leading whitespace, and trailing
    whitespace held back until more text follows, so what was handed on is the final prompt."""

    def __init__(self, sink: OnText | None) -> None:
        self.sink = sink
        self.parts: list[str] = []
        self._held = ""

    @property
    def text(self) -> str:
        return "".join(self.parts)

    async def add(self, piece: str) -> None:
        if not self.parts:
            piece = piece.lstrip()
        combined = self._held + piece
        body = combined.rstrip()
        self._held = combined[len(body) :]
        if body:
            self.parts.append(body)
            if self.sink is not None:
                await self.sink(body)


class OfflineModel:
    """Deterministic and local: structures the prompt without calling anything."""

    name = "offline"

    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def enhance(self, manual_prompt: str, on_text: OnText | None = None) -> Completion:
        text = self.write(manual_prompt)
        if on_text is None:
            if self.delay:
                await asyncio.sleep(self.delay)
            return Completion(text=text, model=self.name)
        words = re.findall(r"\S+\s*", text)
        for word in words:
            if self.delay:
                await asyncio.sleep(self.delay / len(words))
            await on_text(word)
        return Completion(text=text, model=self.name)

    @staticmethod
    def write(manual_prompt: str) -> str:
        task = " ".join(manual_prompt.split())
        return (
            "You are an expert assistant.\n\n"
            f"Task: {task}\n\n"
            "Context: state who the audience is and what they already know.\n"
            "Constraints: be accurate, concise and specific; ask for missing facts rather than "
            "inventing them.\n"
            "Output: a well-structured answer with headings where they help, and a short summary "
            "at the end."
        )


# Endpoints (base URLs) that refused `stream: true`; asked without it from then on.
_NOT_STREAMING: set[str] = set()
# Answers to a streaming request that mean "not like this", not "not now".
_STREAM_REFUSED = frozenset({400, 404, 405, 415, 422, 501})


class ChatCompletionsModel:
    """An OpenAI-compatible `/chat/completions` endpoint over the shared HTTP client."""

    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self.http = http
        self.base_url = settings.llm_base_url.rstrip("/")
        self.name = settings.llm_model
        self.api_key = settings.llm_api_key
        self.timeout = settings.llm_timeout

    def _request(self, manual_prompt: str, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.name,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": manual_prompt},
            ],
        }
        if stream:
            body["stream"] = True
        return body

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    async def enhance(self, manual_prompt: str, on_text: OnText | None = None) -> Completion:
        if on_text is not None and self.base_url not in _NOT_STREAMING:
            streamed = await self._stream(manual_prompt, on_text)
            if streamed is not None:
                return streamed
            _NOT_STREAMING.add(self.base_url)
        completion = await self._complete(manual_prompt)
        if on_text is not None:
            await on_text(completion.text)
        return completion

    async def _complete(self, manual_prompt: str) -> Completion:
        try:
            response = await self.http.post(
                f"{self.base_url}/chat/completions",
                json=self._request(manual_prompt, stream=False),
                headers=self._headers,
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise AIError(f"could not reach the model: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            raise AIError(f"the model answered HTTP {response.status_code}")
        return self._completion(response.content)

    def _completion(self, content: bytes) -> Completion:
        try:
            payload = json.loads(content)
            text = payload["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise AIError("the model's answer was not a chat completion") from exc
        if not isinstance(text, str) or not text.strip():
            raise AIError("the model answered with an empty prompt")
        return Completion(text=text.strip(), model=str(payload.get("model") or self.name))

    async def _stream(self, manual_prompt: str, on_text: OnText) -> Completion | None:
        """The streamed completion, or None when the endpoint refuses to stream."""
        written = _TrimmedText(on_text)
        model = self.name
        try:
            async with aconnect_sse(
                self.http,
                "POST",
                f"{self.base_url}/chat/completions",
                json=self._request(manual_prompt, stream=True),
                headers=self._headers,
                timeout=self.timeout,
            ) as source:
                response = source.response
                if response.status_code in _STREAM_REFUSED:
                    return None
                if response.status_code >= 400:
                    raise AIError(f"the model answered HTTP {response.status_code}")
                if not response.headers.get("content-type", "").startswith("text/event-stream"):
                    # A server that ignores `stream` answers the whole completion at once.
                    completion = self._completion(await response.aread())
                    await on_text(completion.text)
                    return completion
                async for sse in source.aiter_sse():
                    if sse.data.strip() == "[DONE]":
                        break
                    piece, model = _chunk_text(sse.data, model)
                    if piece:
                        await written.add(piece)
        except httpx.HTTPError as exc:
            raise AIError(f"the model's stream broke: {type(exc).__name__}") from exc
        if not written.text:
            raise AIError("the model answered with an empty prompt")
        return Completion(text=written.text, model=model)


def _chunk_text(data: str, model: str) -> tuple[str, str]:
    """The text of one `chat.completion.chunk`, and the model it names."""
    try:
        chunk = json.loads(data)
        delta = chunk["choices"][0].get("delta") or {}
        piece = delta.get("content") or ""
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise AIError("the model streamed something that is not a completion chunk") from exc
    named = chunk.get("model") if isinstance(chunk, dict) else None
    return (piece if isinstance(piece, str) else ""), str(named or model)


def make_model(http: httpx.AsyncClient, settings: Settings) -> PromptModel:
    if settings.llm_base_url:
        return ChatCompletionsModel(http, settings)
    return OfflineModel(settings.offline_llm_delay)


def fallback_prompt(manual_prompt: str) -> str:
    """Used when the model keeps failing: the user still gets a better prompt than they wrote."""
    task = " ".join(manual_prompt.split())
    return (
        f"{task}\n\n"
        "Please answer clearly and accurately, explain your reasoning briefly, "
        "and structure the answer with short sections."
    )
