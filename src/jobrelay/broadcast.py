"""Live events over Redis pub/sub: every process publishes after commit, any API process listens.

Pub/sub is best effort by design: PostgreSQL keeps every event, and listeners re-read it there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from jobrelay.jobs.schemas import EventOut

logger = logging.getLogger(__name__)
CHANNEL_PREFIX = "jobrelay:events:"


def channel(job_id: uuid.UUID | str) -> str:
    return f"{CHANNEL_PREFIX}{job_id}"


def encode_event(event: dict[str, Any]) -> str:
    return EventOut.model_validate(event).model_dump_json()


Command = tuple[Any, ...]  # a Redis command and its arguments, as `execute_command` takes them

# The events of a publish go out as one script call: as a pipeline of PUBLISHes, each event's
# reply was read and parsed on its own, a fifth of a worker's CPU in a drain (py-spy).
_PUBLISH_ALL = """
for i = 1, #ARGV, 2 do
    redis.call('PUBLISH', ARGV[i], ARGV[i + 1])
end
return #ARGV / 2
"""
_EVENTS_PER_CALL = 500


async def publish(
    redis: Redis, events: Sequence[dict[str, Any]], *, before: Sequence[Command] = ()
) -> BaseException | None:
    """Publish the events in one pipeline, after the commands `before` (live output of the same
    jobs, so it reaches listeners ahead of their later events); the Redis error, if any."""
    if not events and not before:
        return None
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for command in before:
                pipe.execute_command(*command)
            for start in range(0, len(events), _EVENTS_PER_CALL):
                args: list[str] = []
                for event in events[start : start + _EVENTS_PER_CALL]:
                    args += (channel(event["job_id"]), encode_event(event))
                pipe.execute_command("EVAL", _PUBLISH_ALL, 0, *args)
            await pipe.execute()
    except (RedisError, OSError) as exc:
        logger.warning("could not publish %d events: %s", len(events) + len(before), exc)
        return exc
    return None


@asynccontextmanager
async def subscription(redis: Redis, job_id: uuid.UUID | str) -> AsyncIterator[PubSub]:
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel(job_id))
    try:
        yield pubsub
    finally:
        try:
            await pubsub.unsubscribe()
            await pubsub.aclose()  # type: ignore[no-untyped-call]
        except (RedisError, OSError):
            pass


async def next_event(pubsub: PubSub, timeout: float) -> dict[str, Any] | None:
    """The next published event, or None after `timeout` seconds of silence."""
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
    if message is None or message.get("type") != "message":
        return None
    decoded: dict[str, Any] = json.loads(message["data"])
    return decoded


async def wait_until(
    redis: Redis,
    job_id: uuid.UUID | str,
    *,
    timeout: float,
    done: Callable[[], Awaitable[bool]],
    recheck_every: float = 1.0,
) -> bool:
    """Wait until `done()` holds, woken by the job's events; rechecks the source of truth often."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        async with subscription(redis, job_id) as pubsub:
            if await done():
                return True
            while (left := deadline - loop.time()) > 0:
                event = await next_event(pubsub, min(left, recheck_every))
                if event is not None and event.get("type") == "output":
                    continue  # live output does not change the job
                if await done():
                    return True
    except (RedisError, OSError):
        while loop.time() < deadline:
            if await done():
                return True
            await asyncio.sleep(min(recheck_every, max(0.0, deadline - loop.time())))
    return await done()
