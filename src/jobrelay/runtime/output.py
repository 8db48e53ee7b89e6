"""Live output: text a running job appends (an LLM's tokens), seen by clients while it is written.

The worker keeps the whole text of the attempt and goes on even when Redis does not answer
(the text still reaches the result); what it sends is best effort:
- appended text is coalesced and published at most every `OUTPUT_INTERVAL` seconds (~20 a
  second) on the job's event channel, so every API process can stream it, as
  `{"type": "output", "attempt", "restart", "data": {"text", "offset"}}`;
- the text so far is kept in Redis while the job runs (its last `output_live_max_chars`
  characters, a setting) for a client that connects mid-run, with the generation it
  belongs to and where it starts;
- a new attempt, or a body that starts its text over (`restart`), is a new generation
  (`attempt`, `restart`): its text begins again at offset 0, and so does the stream.

API processes read it with `read_snapshot` and `OutputCursor` (see `jobrelay.streaming`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from jobrelay.broadcast import Command, channel

logger = logging.getLogger(__name__)

OUTPUT_INTERVAL = 0.05
KEY_PREFIX = "jobrelay:output:"

Generation = tuple[int, int]


def text_key(job_id: uuid.UUID | str) -> str:
    return f"{KEY_PREFIX}{job_id}"


def meta_key(job_id: uuid.UUID | str) -> str:
    return f"{KEY_PREFIX}{job_id}:meta"


def client_event(text: str, offset: int) -> dict[str, Any]:
    """The SSE form of output, as the contract has it (no id: output is not stored per piece)."""
    return {"type": "output", "data": {"text": text, "offset": offset}}


def with_output(result: dict[str, Any] | None, text: str) -> dict[str, Any]:
    """The result a job completes with: the full output is part of it, as the field the kind
    returns it in (`prompt` for `prompt.generate`), else under `output`."""
    stored = dict(result or {})
    if text and text not in stored.values():
        stored.setdefault("output", text)
    return stored


# Takes Redis commands at once, keeping their order, and reports later whether Redis took them
# (in a worker: `WriteBuffer.redis`, which sends them with the next flush's publishes).
Send = Callable[[list[Command]], Awaitable[None]]


class LiveOutput:
    """The output of one attempt of one job, written by its body through the job context.

    `send` takes the commands at once (their order is kept) and reports later whether Redis
    took them, so the body never waits on Redis: what was sent is counted as sent, and a failed
    send makes the next one rewrite the live copy and publish again from where it failed."""

    def __init__(
        self,
        send: Send,
        job_id: uuid.UUID,
        attempt: int,
        *,
        max_chars: int,
        ttl_seconds: int,
    ) -> None:
        self.send = send
        self.job_id = job_id
        self.attempt = attempt
        self.max_chars = max(1, max_chars)
        self.ttl_seconds = ttl_seconds
        self.restarts = 0
        self._text = ""
        self._published = 0  # characters of this generation sent to Redis
        self._stored = 0  # characters of this generation kept in Redis
        self._fresh = True  # the live copy is to be written whole (new generation, or a failure)
        self._announced = False  # this attempt has sent something
        self._last_flush = 0.0
        self._timer: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Future[None]] = set()

    @property
    def text(self) -> str:
        """Everything appended since the attempt (or the last restart) began."""
        return self._text

    @property
    def touched(self) -> bool:
        """Whether this attempt ever sent output (so a retry has something to start over)."""
        return self.restarts > 0 or self._announced

    def append(self, text: str) -> None:
        """Add text; it is published within `OUTPUT_INTERVAL` seconds, with what follows it."""
        if not text:
            return
        self._text += text
        if self._timer is None:
            loop = asyncio.get_running_loop()
            delay = max(0.0, self._last_flush + OUTPUT_INTERVAL - loop.time())
            self._timer = asyncio.create_task(self._flush_after(delay))

    async def restart(self) -> None:
        """Start the text over (a retried model call): clients are told with offset 0."""
        await self._cancel_timer()
        self.restarts += 1
        self._text = ""
        self._published = self._stored = 0
        self._fresh = True
        await self.flush(announce=True)

    async def close(self) -> str:
        """Send what is still waiting (without waiting for Redis); the full text of this attempt."""
        await self._cancel_timer()
        self._submit(announce=False)
        return self._text

    async def end(self, *, starting_over: bool) -> None:
        """The attempt is over: forget the live copy (without waiting for Redis). With
        `starting_over` (the job runs again) clients are told that the output starts over, if
        there was any."""
        await self._cancel_timer()
        commands: list[Command] = [("DEL", text_key(self.job_id), meta_key(self.job_id))]
        if starting_over and self.touched:
            # Announced as the next attempt's empty beginning.
            message = self._message("", 0, (self.attempt + 1, 0))
            commands.append(("PUBLISH", channel(self.job_id), message))
        self._track(commands, offset=None)

    async def sent(self) -> None:
        """Wait until Redis has answered for everything sent so far."""
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    async def flush(self, *, announce: bool = False) -> None:
        """Send the text appended since the last flush and wait for Redis's answer."""
        sending = self._submit(announce=announce)
        if sending is not None:
            await asyncio.gather(asyncio.shield(sending), return_exceptions=True)

    async def _flush_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._timer = None
        await self.flush()

    async def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
            await asyncio.gather(timer, return_exceptions=True)

    def _message(self, text: str, offset: int, generation: Generation | None = None) -> str:
        attempt, restart = generation or (self.attempt, self.restarts)
        return json.dumps({**client_event(text, offset), "attempt": attempt, "restart": restart})

    def _submit(self, *, announce: bool) -> asyncio.Future[None] | None:
        """Send the text appended since the last send: into the live copy (whole, when it is
        new, was lost, or outgrew its bound; else appended) and published."""
        self._last_flush = asyncio.get_running_loop().time()
        offset = self._published
        total = len(self._text)
        piece = self._text[offset:]
        if not piece and not announce:
            return None
        keys = (text_key(self.job_id), meta_key(self.job_id))
        commands: list[Command] = []
        if self._fresh or self._stored + len(piece) > self.max_chars:
            # Keep the last half of the bound when trimming, so trimming is rare.
            kept = self._text if total <= self.max_chars else self._text[-self.max_chars // 2 :]
            commands += [
                ("DEL", *keys),
                ("SET", keys[0], kept),
                ("HSET", keys[1], "attempt", self.attempt, "restart", self.restarts,
                 "start", total - len(kept)),
            ]  # fmt: skip
            stored = len(kept)
        else:
            commands.append(("APPEND", keys[0], piece))
            stored = self._stored + len(piece)
        commands += [
            ("EXPIRE", keys[0], self.ttl_seconds),
            ("EXPIRE", keys[1], self.ttl_seconds),
            ("PUBLISH", channel(self.job_id), self._message(piece, offset)),
        ]
        self._published, self._stored, self._fresh = total, stored, False
        self._announced = True
        return self._track(commands, offset=offset)

    def _track(self, commands: list[Command], *, offset: int | None) -> asyncio.Future[None]:
        future: asyncio.Future[None]
        try:
            future = asyncio.ensure_future(self.send(commands))
        except Exception as exc:  # a sender that is closed (the worker stopping): best effort
            future = asyncio.get_running_loop().create_future()
            future.set_exception(exc)
        self._sending.add(future)
        generation = self.restarts

        def done(future: asyncio.Future[None]) -> None:
            self._sending.discard(future)
            exc = None if future.cancelled() else future.exception()
            if exc is None:
                return
            logger.warning("job %s: could not publish its output: %s", self.job_id, exc)
            if offset is not None and generation == self.restarts:
                # Sent again, whole, with the next piece.
                self._published = min(self._published, offset)
                self._fresh = True

        future.add_done_callback(done)
        return future


@dataclass(frozen=True)
class Snapshot:
    """The live copy of a job's output: the text from `start` on, of one generation."""

    generation: Generation
    start: int
    text: str

    @property
    def end(self) -> int:
        return self.start + len(self.text)


async def read_snapshot(redis: Redis, job_id: uuid.UUID | str) -> Snapshot | None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hgetall(meta_key(job_id))
        pipe.get(text_key(job_id))
        meta, text = await pipe.execute()
    if not meta:
        return None

    def field(name: str) -> int:
        value = meta.get(name.encode()) or meta.get(name) or 0
        return int(value)

    raw = text or b""
    decoded = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    return Snapshot((field("attempt"), field("restart")), field("start"), decoded)


def parse_message(message: dict[str, Any]) -> tuple[Generation, str, int] | None:
    """(generation, text, offset) of a published output message; None if it is not one."""
    if message.get("type") != "output":
        return None
    data = message.get("data") or {}
    try:
        generation = (int(message.get("attempt", 0)), int(message.get("restart", 0)))
        return generation, str(data.get("text", "")), int(data.get("offset", 0))
    except (TypeError, ValueError):
        return None


class OutputCursor:
    """What one SSE connection has sent of a job's output: each piece once, in order.

    Published pieces can reach a connection after the snapshot that already holds them, or be
    lost (pub/sub is best effort); a piece past what was sent brings the snapshot back.
    """

    def __init__(self, attempt: int) -> None:
        self.generation: Generation = (attempt, 0)
        self.end = 0

    def from_snapshot(self, snapshot: Snapshot | None, attempt: int) -> list[dict[str, Any]]:
        """The first output event of a connection: all the text so far, if it is current."""
        if snapshot is None or snapshot.generation[0] != attempt or not snapshot.text:
            return []
        self.generation = snapshot.generation
        self.end = snapshot.end
        return [client_event(snapshot.text, snapshot.start)]

    def accept(
        self, generation: Generation, text: str, offset: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """Events to send for a published piece, and whether a gap needs the snapshot."""
        if generation < self.generation:
            return [], False
        if generation > self.generation:
            self.generation = generation
            self.end = 0
            if offset == 0:
                self.end = len(text)
                return [client_event(text, 0)], False
            return [], True
        if offset + len(text) <= self.end:
            return [], False
        if offset > self.end:
            return [], True
        fresh = text[self.end - offset :]
        event = client_event(fresh, self.end)
        self.end += len(fresh)
        return [event], False

    def fill_gap(self, snapshot: Snapshot | None) -> list[dict[str, Any]]:
        """After a gap: what the snapshot holds beyond what was sent."""
        if snapshot is None or snapshot.generation != self.generation:
            return []
        if snapshot.end <= self.end:
            return []
        if snapshot.start <= self.end:
            fresh = snapshot.text[self.end - snapshot.start :]
            event = client_event(fresh, self.end)
        else:
            event = client_event(snapshot.text, snapshot.start)
        self.end = snapshot.end
        return [event]
