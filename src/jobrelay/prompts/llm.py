"""The model behind `prompt.generate`: any OpenAI-compatible chat-completions endpoint, or a
built-in offline provider when none is configured (so the service works with no account)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

import httpx

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


class PromptModel(Protocol):
    name: str

    async def enhance(self, manual_prompt: str) -> Completion: ...


class OfflineModel:
    """Deterministic and local: structures the prompt without calling anything."""

    name = "offline"

    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def enhance(self, manual_prompt: str) -> Completion:
        if self.delay:
            await asyncio.sleep(self.delay)
        task = " ".join(manual_prompt.split())
        text = (
            "You are an expert assistant.\n\n"
            f"Task: {task}\n\n"
            "Context: state who the audience is and what they already know.\n"
            "Constraints: be accurate, concise and specific; ask for missing facts rather than "
            "inventing them.\n"
            "Output: a well-structured answer with headings where they help, and a short summary "
            "at the end."
        )
        return Completion(text=text, model=self.name)


class ChatCompletionsModel:
    """An OpenAI-compatible `/chat/completions` endpoint over the shared HTTP client."""

    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self.http = http
        self.base_url = settings.llm_base_url.rstrip("/")
        self.name = settings.llm_model
        self.api_key = settings.llm_api_key
        self.timeout = settings.llm_timeout

    async def enhance(self, manual_prompt: str) -> Completion:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {
            "model": self.name,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": manual_prompt},
            ],
        }
        try:
            response = await self.http.post(
                f"{self.base_url}/chat/completions",
                json=body,
                headers=headers,
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise AIError(f"could not reach the model: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            raise AIError(f"the model answered HTTP {response.status_code}")
        try:
            payload = response.json()
            text = payload["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise AIError("the model's answer was not a chat completion") from exc
        if not isinstance(text, str) or not text.strip():
            raise AIError("the model answered with an empty prompt")
        return Completion(text=text.strip(), model=str(payload.get("model") or self.name))


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
