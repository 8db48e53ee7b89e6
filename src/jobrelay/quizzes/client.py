"""The one place that talks to the external generator's `/generate`: sign, send, read the task id.

GeneratorError
 ├── GeneratorUnreachable   connection refused or reset, 429, 5xx: worth another try
 │    └── GeneratorTimeout  no answer within JOBRELAY_GENERATOR_TIMEOUT: worth another try
 └── GeneratorRejected      4xx or a 2xx without a task id: trying again will not help
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from jobrelay import signing
from jobrelay.config import Settings

__all__ = [
    "AI_WORKER_TOKEN_HEADER",
    "GeneratorError",
    "GeneratorRejected",
    "GeneratorTimeout",
    "GeneratorUnreachable",
    "request_generation",
]

AI_WORKER_TOKEN_HEADER = "X-AI-Worker-Token"


class GeneratorError(Exception):
    """The generator did not accept the request; `message` is for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class GeneratorUnreachable(GeneratorError):
    pass


class GeneratorTimeout(GeneratorUnreachable):
    pass


class GeneratorRejected(GeneratorError):
    pass


def generate_url(settings: Settings) -> str:
    return settings.generator_url.rstrip("/") + "/generate"


async def request_generation(
    http: httpx.AsyncClient, settings: Settings, payload: dict[str, Any]
) -> str:
    """Post one generation request; the generator's task id when it accepts it."""
    url = generate_url(settings)
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json"}
    secrets = settings.generator_secret.split()
    if secrets:
        headers.update(signing.sign_now(secrets[0], body))
    if settings.ai_worker_token:
        headers[AI_WORKER_TOKEN_HEADER] = settings.ai_worker_token
    try:
        response = await http.post(
            url, content=body, headers=headers, timeout=settings.generator_timeout
        )
    except httpx.TimeoutException as exc:
        raise GeneratorTimeout(
            f"no answer within {settings.generator_timeout:g} s ({type(exc).__name__})"
        ) from exc
    except httpx.HTTPError as exc:
        raise GeneratorUnreachable(f"{type(exc).__name__}: {exc or 'connection failed'}") from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise GeneratorUnreachable(f"HTTP {response.status_code}: {_excerpt(response)}")
    if not 200 <= response.status_code < 300:
        raise GeneratorRejected(
            f"the generator refused the request with HTTP {response.status_code}: "
            f"{_excerpt(response)}"
            + (
                " (check JOBRELAY_GENERATOR_SECRET on both sides)"
                if response.status_code in (401, 403)
                else ""
            )
        )
    return _task_id(response)


def _task_id(response: httpx.Response) -> str:
    try:
        task_id = response.json().get("task_id")
    except (ValueError, AttributeError):
        task_id = None
    usable = isinstance(task_id, str | int) and not isinstance(task_id, bool)
    if not usable or not str(task_id).strip() or len(str(task_id)) > 200:
        raise GeneratorRejected(
            f"the generator answered HTTP {response.status_code} without a usable task_id: "
            f"{_excerpt(response)}"
        )
    return str(task_id).strip()


def _excerpt(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return (text[:300] + "...") if len(text) > 300 else (text or "(empty body)")
