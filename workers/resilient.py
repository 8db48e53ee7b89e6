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

from arq.worker import Worker
from redis.exceptions import RedisError

logger = logging.getLogger("jobrelay.worker")

OUTAGE_PAUSE_SECONDS = 1.0
LOG_EVERY_SECONDS = 10.0


class ResilientWorker(Worker):
    _outage_since: float | None = None
    _outage_logged: float = 0.0

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except (RedisError, OSError) as exc:
            now = time.monotonic()
            if self._outage_since is None:
                self._outage_since = now
            if now - self._outage_logged >= LOG_EVERY_SECONDS:
                self._outage_logged = now
                logger.warning(
                    "Redis unavailable for %.0f s, polling again: %s", now - self._outage_since, exc
                )
            await asyncio.sleep(OUTAGE_PAUSE_SECONDS)
            return
        if self._outage_since is not None:
            logger.info("Redis is back after %.1f s", time.monotonic() - self._outage_since)
            self._outage_since = None
            self._outage_logged = 0.0

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """ARQ takes a running slot before its Redis round trips for a job; when one of them
        fails, the slot would stay taken for good, so it is handed back here."""
        try:
            await super().start_jobs(job_ids)
        except (RedisError, OSError):
            self._release_sem_dec_counter_on_complete()
            raise
