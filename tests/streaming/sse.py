"""A small, strict reader of `text/event-stream` for the tests (fields per the SSE spec)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Frame:
    """One dispatched SSE message, or a comment (`comment` set, no fields)."""

    fields: dict[str, str] = field(default_factory=dict)
    comment: str | None = None

    @property
    def id(self) -> int:
        return int(self.fields["id"])

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.fields["data"])
        return parsed

    @property
    def is_output(self) -> bool:
        """Live output (`{"type": "output"}`, sent without an id)."""
        return "id" not in self.fields and self.event.get("type") == "output"


async def frames(lines: AsyncIterator[str]) -> AsyncIterator[Frame]:
    current: dict[str, list[str]] = {}
    async for line in lines:
        if line == "":
            if current:
                yield Frame({name: "\n".join(values) for name, values in current.items()})
                current = {}
            continue
        if line.startswith(":"):
            yield Frame(comment=line[1:].strip())
            continue
        name, _, value = line.partition(":")
        current.setdefault(name, []).append(value[1:] if value.startswith(" ") else value)
    if current:
        yield Frame({name: "\n".join(values) for name, values in current.items()})


async def read_events(
    client: httpx.AsyncClient,
    job_id: str,
    *,
    last_event_id: int | None = None,
    stop_after: int | None = None,
    timeout: float = 60,
    with_output: bool = False,
) -> list[Frame]:
    """Read the job's stream until the server ends it (or `stop_after` messages, then hang up).
    Live output frames are left out unless `with_output`.

    Fails if the stream does not end by itself within `timeout` seconds.
    """
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    received: list[Frame] = []
    async with asyncio.timeout(timeout):
        async with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers.get("cache-control") == "no-cache"
            async for frame in frames(response.aiter_lines()):
                if frame.comment is not None or (frame.is_output and not with_output):
                    continue
                received.append(frame)
                if stop_after is not None and len(received) >= stop_after:
                    break
    return received
