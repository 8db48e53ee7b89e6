"""Server-sent events for one job: stored events first, then live ones, until the terminal event.

Live events come from Redis pub/sub, so any API process can serve a job run by any worker. Pub/sub
is lossy by nature, so the stream also re-reads PostgreSQL whenever it is idle; ids deduplicate.
Live output (`jobrelay.runtime.output`) rides the same channel and goes out without `id:`: a
connection to a running job first gets the text so far in one `output` event, then each piece.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from redis.exceptions import RedisError

from jobrelay import broadcast
from jobrelay.db import jobs as jobs_db
from jobrelay.db.jobs import JobRow
from jobrelay.jobs.schemas import EventOut
from jobrelay.jobs.states import is_terminal
from jobrelay.runtime.output import OutputCursor, Snapshot, parse_message, read_snapshot
from jobrelay.services import Services

KEEPALIVE_SECONDS = 15.0
RECHECK_SECONDS = 2.0
PAGE = 1000


def _frame(event: dict[str, Any]) -> str:
    """`id:` and `data:` only, as the contract has it; a named `event:` would hide the message
    from `EventSource.onmessage` and every client that listens for the default type."""
    return f"id: {event['id']}\ndata: {json.dumps(event)}\n\n"


async def _stored_after(
    services: Services, job_id: uuid.UUID, after_id: int
) -> list[dict[str, Any]]:
    async with services.engine.connect() as conn:
        rows = await jobs_db.list_events(conn, job_id, after_id=after_id, limit=PAGE)
    return [EventOut.model_validate(r, from_attributes=True).model_dump(mode="json") for r in rows]


async def _job_row(services: Services, job_id: uuid.UUID) -> JobRow | None:
    async with services.engine.connect() as conn:
        return await jobs_db.get_job(conn, job_id)


async def _job_finished(services: Services, job_id: uuid.UUID) -> bool:
    row = await _job_row(services, job_id)
    return row is None or is_terminal(row.status)


def _output_frame(event: dict[str, Any]) -> str:
    """Output is not stored piece by piece, so it has no id to resume from."""
    return f"data: {json.dumps(event)}\n\n"


async def _output_snapshot(services: Services, job_id: uuid.UUID) -> Snapshot | None:
    try:
        return await read_snapshot(services.redis, job_id)
    except (RedisError, OSError):
        return None


def _ends(event: dict[str, Any]) -> bool:
    """An event's `status` is the job's status right after it: terminal means the job ended
    (a retry would add a later `queued` event, so only the latest event decides)."""
    return is_terminal(event["status"])


async def follow(
    services: Services, job_id: uuid.UUID, *, after_id: int, request: Request | None = None
) -> AsyncIterator[str]:
    """Yield SSE frames; returns after the terminal event has been sent."""
    last_id = after_id
    loop = asyncio.get_running_loop()
    idle_since = loop.time()

    async def catch_up() -> tuple[list[str], bool]:
        """Everything stored after `last_id`, and whether the latest event ends the job."""
        nonlocal last_id
        frames: list[str] = []
        ended = False
        while True:
            page = await _stored_after(services, job_id, last_id)
            for event in page:
                last_id = event["id"]
                frames.append(_frame(event))
                ended = _ends(event)
            if len(page) < PAGE:
                return frames, ended

    async def finish() -> AsyncIterator[str]:
        """The job is over in PostgreSQL: send what is left (its ending included)."""
        frames, _ = await catch_up()
        for frame in frames:
            yield frame

    try:
        async with broadcast.subscription(services.redis, job_id) as pubsub:
            frames, ended = await catch_up()
            for frame in frames:
                yield frame
            if ended:
                return
            row = await _job_row(services, job_id)
            if row is None or is_terminal(row.status):
                async for frame in finish():
                    yield frame
                return
            output = OutputCursor(int(row.attempts))
            snapshot = await _output_snapshot(services, job_id)
            for event in output.from_snapshot(snapshot, int(row.attempts)):
                yield _output_frame(event)
            while True:
                if request is not None and await request.is_disconnected():
                    return
                try:
                    live = await broadcast.next_event(pubsub, RECHECK_SECONDS)
                except (RedisError, OSError):
                    live = None
                    await asyncio.sleep(RECHECK_SECONDS)
                piece = parse_message(live) if live is not None else None
                if piece is not None:
                    events, gap = output.accept(*piece)
                    if gap:
                        events = output.fill_gap(await _output_snapshot(services, job_id))
                    for event in events:
                        yield _output_frame(event)
                    idle_since = loop.time()
                    continue
                if live is not None and int(live["id"]) <= last_id:
                    continue
                if live is not None and int(live["id"]) == last_id + 1:
                    last_id = int(live["id"])
                    idle_since = loop.time()
                    yield _frame(live)
                    if _ends(live):
                        return
                    continue
                frames, ended = await catch_up()
                for frame in frames:
                    yield frame
                if frames:
                    idle_since = loop.time()
                if ended:
                    return
                if not frames and live is None and await _job_finished(services, job_id):
                    async for frame in finish():
                        yield frame
                    return
                if loop.time() - idle_since >= KEEPALIVE_SECONDS:
                    idle_since = loop.time()
                    yield ": keep-alive\n\n"
    except (RedisError, OSError):
        while True:
            frames, ended = await catch_up()
            for frame in frames:
                yield frame
            if ended:
                return
            if await _job_finished(services, job_id):
                async for frame in finish():
                    yield frame
                return
            await asyncio.sleep(RECHECK_SECONDS)
            yield ": keep-alive\n\n"


def event_stream_response(
    services: Services, job_id: uuid.UUID, *, after_id: int, request: Request
) -> StreamingResponse:
    return StreamingResponse(
        follow(services, job_id, after_id=after_id, request=request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
