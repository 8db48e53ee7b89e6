"""An ARQ worker that rides out Redis outages instead of exiting.

ARQ's poll loop lets a Redis error end `Worker.main`, and with it the process and every job it
was running. Jobs keep their state in PostgreSQL, so a worker has no reason to die with Redis:
this one logs the failed poll, waits, and polls again; running jobs carry on meanwhile, and
once Redis is back the reconciler re-enqueues whatever it lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from arq.connections import create_pool
from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker
from redis.exceptions import RedisError

logger = logging.getLogger("jobrelay.worker")

OUTAGE_PAUSE_SECONDS = 1.0
LOG_EVERY_SECONDS = 10.0

# ARQ's check-and-mark of one job (WATCH, EXISTS, ZSCORE, MULTI/EXEC: four round trips, one job
# after another), for every job that has a free slot, in one round trip. KEYS: the queue, then
# each job's in-progress key; ARGV: now (ms), the in-progress timeout (ms), then each job id.
# Returns each job's score, or 0 for a job to leave alone (running elsewhere, gone, not due).
_START = """
local out = {}
for i = 2, #KEYS do
  local id = ARGV[i + 1]
  local score = redis.call('zscore', KEYS[1], id)
  if redis.call('exists', KEYS[i]) == 1 or not score or tonumber(score) > tonumber(ARGV[1]) then
    out[i - 1] = 0
  else
    redis.call('psetex', KEYS[i], ARGV[2], '1')
    out[i - 1] = score
  end
end
return out
"""


class ResilientWorker(Worker):
    _outage_since: float | None = None
    _outage_logged: float = 0.0
    _start_script: Any = None

    async def main(self) -> None:
        """ARQ's `main`, started again while Redis cannot be reached: a worker that starts (or
        whose queue's worker starts, in a process serving several queues) during an outage
        waits for Redis instead of ending the process. The poll loop rides out outages itself
        (`_poll_iteration`), so what is retried here is the start: the pool, ARQ's INFO, startup.
        """
        while True:
            try:
                if self._pool is None:
                    self._pool = await create_pool(
                        self.redis_settings,
                        job_deserializer=self.job_deserializer,
                        job_serializer=self.job_serializer,
                        default_queue_name=self.queue_name,
                        expires_extra_ms=self.expires_extra_ms,
                    )
                await super().main()
                return
            except (TimeoutError, RedisError, OSError) as exc:
                self._note_outage(exc)
                await asyncio.sleep(OUTAGE_PAUSE_SECONDS)

    def _note_outage(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self._outage_since is None:
            self._outage_since = now
        if now - self._outage_logged >= LOG_EVERY_SECONDS:
            self._outage_logged = now
            logger.warning(
                "Redis unavailable for %.0f s, polling again: %s", now - self._outage_since, exc
            )

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except (RedisError, OSError) as exc:
            self._note_outage(exc)
            await asyncio.sleep(OUTAGE_PAUSE_SECONDS)
            return
        if self._outage_since is not None:
            logger.info("Redis is back after %.1f s", time.monotonic() - self._outage_since)
            self._outage_since = None
            self._outage_logged = 0.0

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """ARQ's `start_jobs`, with the jobs that have a free slot marked in progress in one
        round trip (a Lua script doing ARQ's checks) instead of four round trips each.

        ARQ takes a running slot before its Redis round trip for a job; when it fails, the slot
        would stay taken for good, so it is handed back here."""
        pending = [job_id.decode() for job_id in job_ids]
        if self._start_script is None:
            self._start_script = self.pool.register_script(_START)
        while pending:
            await self.sem.acquire()
            taken = 1
            while taken < len(pending) and not self.sem.locked():
                await self.sem.acquire()
                taken += 1
            allowed = max(0, min(taken, self.max_jobs - self.job_counter))
            for _ in range(taken - allowed):
                self.sem.release()
            if allowed == 0:
                return
            batch, pending = pending[:allowed], pending[allowed:]
            self.job_counter += allowed
            try:
                scores = await self._start_script(
                    keys=[self.queue_name, *(in_progress_key_prefix + j for j in batch)],
                    args=[timestamp_ms(), int(self.in_progress_timeout_s * 1000), *batch],
                )
            except (RedisError, OSError):
                for _ in batch:
                    self._release_sem_dec_counter_on_complete()
                raise
            for job_id, score in zip(batch, scores, strict=True):
                if not score:
                    self._release_sem_dec_counter_on_complete()
                    continue
                task = self.loop.create_task(self.run_job(job_id, int(float(score))))
                task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
                self.tasks[job_id] = task
