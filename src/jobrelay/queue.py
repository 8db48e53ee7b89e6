"""The only producer-side ARQ code: enqueue, abort, inspect.

Every job is enqueued as the ARQ function `run_job` with `_job_id` = the job's id, so enqueueing
twice is harmless. PostgreSQL stays the source of truth; what Redis loses, the reconciler restores.

Each job kind has a queue (see `jobrelay.kinds`); a queue is one ARQ queue, a sorted set in
Redis: the `default` queue is `JOBRELAY_QUEUE_NAME` itself (`jobrelay:queue`), any other queue
`NAME` is `jobrelay:queue:NAME`. Job and result keys are ARQ's own (`arq:job:<id>`), shared by
all queues, so a job is held once whichever queue it waits in. Helper tasks (webhook
deliveries) use the default queue.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterable
from typing import Any

from arq import ArqRedis
from arq.connections import RedisSettings
from arq.constants import (
    abort_jobs_ss,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
)
from arq.jobs import serialize_job
from arq.utils import timestamp_ms, to_ms
from arq.worker import Retry

from jobrelay import redis_connect
from jobrelay.config import Settings
from jobrelay.kinds import DEFAULT_QUEUE, load_kinds

RUN_JOB = "run_job"
_ENQUEUE = """
redis.call('zrem', KEYS[4], ARGV[1])
if redis.call('exists', KEYS[1], KEYS[2]) > 0 then
  return 0
end
redis.call('psetex', KEYS[1], ARGV[2], ARGV[3])
redis.call('zadd', KEYS[3], ARGV[4], ARGV[1])
return 1
"""

# `_ENQUEUE` for many jobs in one call. KEYS: the abort set, then each job's queue, job key and
# result key; ARGV: each job's id, expiry (ms), payload and score.
_ENQUEUE_MANY = """
local added = 0
for i = 0, (#KEYS - 1) / 3 - 1 do
  local id = ARGV[i * 4 + 1]
  redis.call('zrem', KEYS[1], id)
  if redis.call('exists', KEYS[3 + i * 3], KEYS[4 + i * 3]) == 0 then
    redis.call('psetex', KEYS[3 + i * 3], ARGV[i * 4 + 2], ARGV[i * 4 + 3])
    redis.call('zadd', KEYS[2 + i * 3], ARGV[i * 4 + 4], id)
    added = added + 1
  end
end
return added
"""


def redis_settings(settings: Settings) -> RedisSettings:
    return redis_connect.arq_settings(settings)


def worker_pool(settings: Settings, queue: str) -> ArqRedis:
    """The Redis client of the worker of one queue: ARQ would open its own without socket
    timeouts, so a primary that stops answering (a partition, a paused machine) would hang the
    worker's polls for good instead of failing them over to the new primary."""
    return redis_connect.arq_pool(settings, queue_key(settings.queue_name, queue))


def queue_key(base: str, queue: str) -> str:
    """The Redis key of a queue: the base name for the default queue, `base:NAME` otherwise."""
    return base if queue == DEFAULT_QUEUE else f"{base}:{queue}"


def retry_later(delay_seconds: float) -> Retry:
    """The exception a worker function raises to run the same ARQ job again after a delay."""
    return Retry(defer=dt.timedelta(seconds=delay_seconds))


class Queue:
    """Producer side of the job queue."""

    def __init__(self, pool: ArqRedis, queue_name: str) -> None:
        self.pool = pool
        self.queue_name = queue_name
        self._enqueue = pool.register_script(_ENQUEUE)
        self._enqueue_many = pool.register_script(_ENQUEUE_MANY)

    @classmethod
    async def connect(cls, settings: Settings) -> Queue:
        """Lazy: no round trip here, so an API process starts (and reports 503) while Redis is down."""
        return cls(redis_connect.arq_pool(settings, settings.queue_name), settings.queue_name)

    async def close(self) -> None:
        await self.pool.aclose()

    def key_of(self, queue: str) -> str:
        return queue_key(self.queue_name, queue)

    async def enqueue_job(
        self,
        job_id: uuid.UUID | str,
        *,
        kind: str | None = None,
        queue: str | None = None,
        defer_seconds: float = 0,
    ) -> bool:
        """Put a job on its kind's queue (or `queue`); False when ARQ already holds it (which
        is fine).

        What `ArqRedis.enqueue_job` writes (same keys, payload, score and expiry), in one round
        trip instead of five: a Lua script checks and writes atomically where ARQ uses WATCH,
        EXISTS and MULTI/EXEC, and it also clears an old abort request for the id."""
        key = str(job_id)
        if queue is None:
            queue = load_kinds().queue_of(kind) if kind is not None else DEFAULT_QUEUE
        enqueued_ms = timestamp_ms()
        score = enqueued_ms + (to_ms(defer_seconds) if defer_seconds else 0)
        payload = serialize_job(
            RUN_JOB, (key,), {}, None, enqueued_ms, serializer=self.pool.job_serializer
        )
        added = await self._enqueue(
            keys=[job_key_prefix + key, result_key_prefix + key, self.key_of(queue), abort_jobs_ss],
            args=[key, score - enqueued_ms + self.pool.expires_extra_ms, payload, score],
        )
        return bool(added)

    async def enqueue_jobs(self, jobs: Iterable[tuple[uuid.UUID | str, str]]) -> int:
        """`enqueue_job` for many (job id, kind) pairs, each on its kind's queue and due now, in
        one round trip; how many were added."""
        keys: list[str] = [abort_jobs_ss]
        args: list[Any] = []
        enqueued_ms = timestamp_ms()
        kinds = load_kinds()
        for job_id, kind in jobs:
            key = str(job_id)
            payload = serialize_job(
                RUN_JOB, (key,), {}, None, enqueued_ms, serializer=self.pool.job_serializer
            )
            keys += [self.key_of(kinds.queue_of(kind)), job_key_prefix + key]
            keys.append(result_key_prefix + key)
            args += [key, self.pool.expires_extra_ms, payload, enqueued_ms]
        if len(keys) == 1:
            return 0
        return int(await self._enqueue_many(keys=keys, args=args))

    async def enqueue_task(
        self, function: str, *args: Any, task_id: str | None = None, defer_seconds: float = 0
    ) -> bool:
        """Enqueue a helper task (webhook delivery and the like) by function name."""
        job = await self.pool.enqueue_job(
            function, *args, _job_id=task_id, _defer_by=defer_seconds or None
        )
        return job is not None

    async def abort(self, job_id: uuid.UUID | str) -> None:
        """Ask the worker running this job to cancel its task (ARQ's abort set)."""
        await self.pool.zadd(abort_jobs_ss, {str(job_id): int(time.time() * 1000)})

    async def held(self, job_ids: Iterable[uuid.UUID | str]) -> set[str]:
        """Which of these jobs Redis still holds (queued, deferred or running)."""
        keys = [str(j) for j in job_ids]
        if not keys:
            return set()
        async with self.pool.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.exists(job_key_prefix + key)
            found = await pipe.execute()
        return {key for key, exists in zip(keys, found, strict=True) if exists}

    async def in_progress(self, job_ids: Iterable[uuid.UUID | str]) -> set[str]:
        """Which of these jobs some worker has started (ARQ's in-progress key is set)."""
        keys = [str(j) for j in job_ids]
        if not keys:
            return set()
        async with self.pool.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.exists(in_progress_key_prefix + key)
            found = await pipe.execute()
        return {key for key, exists in zip(keys, found, strict=True) if exists}

    async def release_stale(self, job_id: uuid.UUID | str) -> None:
        """Forget a dead worker's claim so another worker picks the job up now, not after ARQ's
        in-progress timeout; PostgreSQL's lease already says that worker is gone."""
        await self.pool.delete(in_progress_key_prefix + str(job_id))

    async def depth(self, queue: str | None = None) -> int:
        """Entries in one queue (all queues' when None) as Redis holds them."""
        if queue is not None:
            return int(await self.pool.zcard(self.key_of(queue)))
        return sum((await self.depths(load_kinds().queues())).values())

    async def depths(self, queues: Iterable[str]) -> dict[str, int]:
        """Entries per queue in Redis (deferred retries and helper tasks included)."""
        names = list(queues)
        async with self.pool.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.zcard(self.key_of(name))
            found = await pipe.execute()
        return {name: int(count) for name, count in zip(names, found, strict=True)}

    async def ping(self) -> bool:
        return bool(await self.pool.ping())
