"""Per-user submissions per minute: a fixed one-minute window counted in Redis."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from jobrelay.errors import RateLimited


async def check_submission_rate(redis: Redis, *, user_id: int, limit: int) -> None:
    now = time.time()
    window = int(now // 60)
    key = f"jobrelay:rate:{user_id}:{window}"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, 120)
        count, _ = await pipe.execute()
    if int(count) > limit:
        retry_after = max(1, int(60 - (now % 60)) + 1)
        raise RateLimited(
            f"More than {limit} submissions in a minute; retry in {retry_after} s.",
            retry_after=retry_after,
            details=[{"limit": limit, "window_seconds": 60}],
        )
