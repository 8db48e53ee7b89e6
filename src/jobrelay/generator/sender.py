"""Posting callbacks from the reference generator: signed, retried, the same message id each try."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass
from typing import Any

import httpx

from jobrelay import signing

__all__ = ["CallbackSender", "Delivery"]

logger = logging.getLogger("jobrelay.generator")

AI_WORKER_TOKEN_HEADER = "X-AI-Worker-Token"
_RETRY_BASE = 0.5
_RETRY_CAP = 10.0


@dataclass(frozen=True)
class Delivery:
    """How a callback ended: the last HTTP status (None if never answered) and the tries."""

    status_code: int | None
    attempts: int

    @property
    def accepted(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class CallbackSender:
    """Signs with the generator secret (when set) and adds the legacy token (when set)."""

    def __init__(
        self, http: httpx.AsyncClient, *, secret: str, token: str, retries: int, timeout: float
    ) -> None:
        self._http = http
        self._secret = secret.split()[0] if secret.split() else ""
        self._token = token
        self._retries = retries
        self._timeout = timeout

    async def post(self, url: str, payload: dict[str, Any], *, legacy: bool = False) -> Delivery:
        """Deliver `payload`, retrying connection errors, timeouts, 429 and 5xx with backoff.

        `legacy` sends only `X-AI-Worker-Token`, as a generator that predates signing would.
        """
        body = json.dumps(payload, separators=(",", ":")).encode()
        msg_id = signing.new_message_id()
        status_code: int | None = None
        attempt = 0
        for attempt in range(1, self._retries + 2):
            headers = {"Content-Type": "application/json"}
            if self._secret and not legacy:
                headers.update(signing.sign_now(self._secret, body, msg_id=msg_id))
            if self._token:
                headers[AI_WORKER_TOKEN_HEADER] = self._token
            try:
                response = await self._http.post(
                    url, content=body, headers=headers, timeout=self._timeout
                )
            except httpx.HTTPError as exc:
                logger.warning("callback to %s failed (try %d): %r", url, attempt, exc)
                status_code = None
            else:
                status_code = response.status_code
                if status_code < 500 and status_code != 429:
                    if status_code >= 300:
                        logger.warning(
                            "callback to %s refused with %d: %s",
                            url,
                            status_code,
                            response.text[:500],
                        )
                    return Delivery(status_code, attempt)
                logger.warning("callback to %s answered %d (try %d)", url, status_code, attempt)
            if attempt <= self._retries:
                await asyncio.sleep(_backoff(attempt))
        return Delivery(status_code, attempt)


def _backoff(attempt: int) -> float:
    """Exponential with jitter: half the capped step fixed, the other half random."""
    step: float = min(_RETRY_CAP, _RETRY_BASE * 2.0 ** (attempt - 1))
    return step / 2 + random.uniform(0, step / 2)
