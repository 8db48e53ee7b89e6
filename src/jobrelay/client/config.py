"""What both clients share before any request: where the API is, the key, the patience."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata

import httpx

from jobrelay.client.protocol import Policy

__all__ = ["DEFAULT_TIMEOUT", "DEFAULT_URL", "ClientConfig"]

DEFAULT_URL = "http://127.0.0.1:8000"
# Seconds for a whole answer; connecting gets less, since a refused or silent host is not busy.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


def _user_agent() -> str:
    try:
        version = metadata.version("jobrelay")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return f"jobrelay-python/{version}"


@dataclass(frozen=True)
class ClientConfig:
    base_url: str
    headers: dict[str, str]
    timeout: httpx.Timeout
    policy: Policy

    @classmethod
    def resolve(
        cls,
        base_url: str | None,
        api_key: str | None,
        *,
        timeout: float | httpx.Timeout,
        max_retries: int,
        poll_interval: float,
    ) -> ClientConfig:
        """Arguments first, then `JOBRELAY_API_URL` / `JOBRELAY_API_KEY`."""
        url = (base_url or os.environ.get("JOBRELAY_API_URL") or DEFAULT_URL).strip().rstrip("/")
        key = (api_key or os.environ.get("JOBRELAY_API_KEY") or "").strip()
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"invalid API URL {url!r}: expected http(s)://host:port")
        if not key:
            raise ValueError("no API key: pass api_key or set JOBRELAY_API_KEY")
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        return cls(
            base_url=url,
            headers={
                "Authorization": f"Bearer {key}",
                "Accept": "application/json",
                "User-Agent": _user_agent(),
            },
            timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
            policy=Policy(base_url=url, max_retries=max_retries, poll_interval=poll_interval),
        )
