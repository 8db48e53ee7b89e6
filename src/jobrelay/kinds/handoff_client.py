"""The one place that talks to a delegated kind's external worker: sign, send, read the task id.

HandOffError
 ├── HandOffUnreachable   connection refused or reset, 429, 5xx: worth another try
 │    └── HandOffTimeout  no answer within JOBRELAY_GENERATOR_TIMEOUT: worth another try
 └── HandOffRejected      4xx or a 2xx without a task id: trying again will not help
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from jobrelay import signing

__all__ = [
    "AI_WORKER_TOKEN_HEADER",
    "HandOffError",
    "HandOffRejected",
    "HandOffTimeout",
    "HandOffUnreachable",
    "post_hand_off",
]

AI_WORKER_TOKEN_HEADER = "X-AI-Worker-Token"


class HandOffError(Exception):
    """The worker did not accept the request; `message` is for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class HandOffUnreachable(HandOffError):
    pass


class HandOffTimeout(HandOffUnreachable):
    pass


class HandOffRejected(HandOffError):
    pass


async def post_hand_off(
    http: httpx.AsyncClient,
    url: str,
    payload: dict[str, Any],
    *,
    secrets: list[str],
    token: str,
    timeout: float,
    secret_env: str = "the signing secret",
) -> str:
    """Post one hand-off; the worker's task id when it accepts it."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json"}
    if secrets:
        headers.update(signing.sign_now(secrets[0], body))
    if token:
        headers[AI_WORKER_TOKEN_HEADER] = token
    try:
        response = await http.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.TimeoutException as exc:
        raise HandOffTimeout(f"no answer within {timeout:g} s ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise HandOffUnreachable(f"{type(exc).__name__}: {exc or 'connection failed'}") from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise HandOffUnreachable(f"HTTP {response.status_code}: {_excerpt(response)}")
    if not 200 <= response.status_code < 300:
        raise HandOffRejected(
            f"the worker refused the request with HTTP {response.status_code}: "
            f"{_excerpt(response)}"
            + (f" (check {secret_env} on both sides)" if response.status_code in (401, 403) else "")
        )
    return _task_id(response)


def _task_id(response: httpx.Response) -> str:
    try:
        task_id = response.json().get("task_id")
    except (ValueError, AttributeError):
        task_id = None
    usable = isinstance(task_id, str | int) and not isinstance(task_id, bool)
    if not usable or not str(task_id).strip() or len(str(task_id)) > 200:
        raise HandOffRejected(
            f"the worker answered HTTP {response.status_code} without a usable task_id: "
            f"{_excerpt(response)}"
        )
    return str(task_id).strip()


def _excerpt(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return (text[:300] + "...") if len(text) > 300 else (text or "(empty body)")
