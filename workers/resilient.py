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

from redis.exceptions import RedisError

from workers.batched import BatchedWorker

logger = logging.getLogger("jobrelay.worker")

OUTAGE_PAUSE_SECONDS = 1.0
LOG_EVERY_SECONDS = 10.0


class ResilientWorker(BatchedWorker):
    _outage_since: float | None = None
    _outage_logged: float = 0.0

    async def main(self) -> None:
        """ARQ connects once as it starts and gives up after `conn_retries`, ending the process;
        a worker that starts while Redis is down (restarting, failing over) waits for it instead,
        as it does once running. Starting again is harmless: the pool and the services opened
        before the failure are kept."""
        while True:
            try:
                await super().main()
                return
            except (RedisError, OSError) as exc:
                await self._wait_out(exc, "connecting again")

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except (RedisError, OSError) as exc:
            await self._wait_out(exc, "polling again")
            return
        if self._outage_since is not None:
            logger.info("Redis is back after %.1f s", time.monotonic() - self._outage_since)
            self._outage_since = None
            self._outage_logged = 0.0

    async def _wait_out(self, exc: BaseException, doing: str) -> None:
        """Log an outage now and then (not on every failed call), then pause."""
        now = time.monotonic()
        if self._outage_since is None:
            self._outage_since = now
        if now - self._outage_logged >= LOG_EVERY_SECONDS:
            self._outage_logged = now
            logger.warning(
                "Redis unavailable for %.0f s, %s: %s", now - self._outage_since, doing, exc
            )
        await asyncio.sleep(OUTAGE_PAUSE_SECONDS)
