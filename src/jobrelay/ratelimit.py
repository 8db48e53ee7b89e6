"""Per-user submissions per minute: a fixed one-minute window counted in Redis.

The counts of concurrent requests go to Redis together: a request that finds no count being
sent sends its own at once; requests arriving meanwhile are counted in the next round trip,
all of them in one script call (each key incremented, and given its expiry when new, atomically).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from dataclasses import dataclass, field

from redis.asyncio import Redis

from jobrelay.errors import RateLimited

_COUNT = """
local out = {}
for i = 1, #KEYS do
  local count = redis.call('incr', KEYS[i])
  if count == 1 then
    redis.call('expire', KEYS[i], 120)
  end
  out[i] = count
end
return out
"""


@dataclass(eq=False)
class _Counter:
    """One Redis client's counts in flight and waiting."""

    redis: weakref.ref[Redis]  # weak: the counter lives as long as its client, no longer
    waiting: list[tuple[str, asyncio.Future[int]]] = field(default_factory=list)
    sending: bool = False

    async def count(self, key: str) -> int:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.waiting.append((key, future))
        if not self.sending:
            self.sending = True
            asyncio.get_running_loop().create_task(self._send_while_waiting())
        return await future

    async def _send_while_waiting(self) -> None:
        try:
            while self.waiting:
                batch, self.waiting = self.waiting, []
                try:
                    client = self.redis()
                    if client is None:
                        raise RuntimeError("the Redis client was closed")
                    keys = [key for key, _ in batch]
                    counts = await client.eval(_COUNT, len(keys), *keys)  # type: ignore[misc]
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, future), count in zip(batch, counts, strict=True):
                    if not future.done():
                        future.set_result(int(count))
        finally:
            self.sending = False


_counters: weakref.WeakKeyDictionary[Redis, _Counter] = weakref.WeakKeyDictionary()


async def check_submission_rate(redis: Redis, *, user_id: int, limit: int) -> None:
    now = time.time()
    window = int(now // 60)
    counter = _counters.get(redis)
    if counter is None:
        counter = _counters[redis] = _Counter(weakref.ref(redis))
    count = await counter.count(f"jobrelay:rate:{user_id}:{window}")
    if count > limit:
        retry_after = max(1, int(60 - (now % 60)) + 1)
        raise RateLimited(
            f"More than {limit} submissions in a minute; retry in {retry_after} s.",
            retry_after=retry_after,
            details=[{"limit": limit, "window_seconds": 60}],
        )
