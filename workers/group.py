"""Several ARQ workers in one process: ARQ's `Worker` serves one queue, and `jobrelay worker
--queue gpu --queue default` serves two. Each queue gets its own worker (its own running slots,
so a queue busy with slow jobs does not hold up another), and all of them share one `Services`
(one connection pool, one HTTP client). Signals stop them together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from arq.worker import Worker

from jobrelay.config import Settings
from jobrelay.services import Services, freeze_startup_heap

logger = logging.getLogger("jobrelay.worker")


class WorkerGroup:
    """The ARQ workers of one process, one per queue, started and stopped together."""

    def __init__(self, settings: Settings, queues: list[str], workers: list[Worker]) -> None:
        self.settings = settings
        self.queues = queues
        self.workers = workers
        self.services: Services | None = None
        self._mains: list[asyncio.Task[None]] = []

    async def _open(self) -> None:
        if self.services is None:
            self.services = await Services.open(self.settings)
            for worker in self.workers:
                worker.ctx["services"] = self.services
            freeze_startup_heap()

    async def async_run(self) -> None:
        """Run every worker until stopped (`close`, or a worker that ends)."""
        await self._open()
        logger.info("serving queues: %s", ", ".join(self.queues))
        self._mains = [asyncio.create_task(worker.async_run()) for worker in self.workers]
        try:
            done, _ = await asyncio.wait(self._mains, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                error = None if task.cancelled() else task.exception()
                if error is not None:
                    raise error
        finally:
            self.stop()

    def stop(self, signum: signal.Signals = signal.SIGUSR1) -> None:
        """Cancel the running jobs and the poll loops (what ARQ does on a signal)."""
        for worker in self.workers:
            if worker.main_task is not None and not worker.main_task.done():
                worker.handle_sig(signum)

    async def close(self) -> None:
        """Wait for the workers to let go, then close the shared services."""
        self.stop()
        for worker in self.workers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await worker.close()
        if self.services is not None:
            await self.services.close()
            self.services = None

    def run(self) -> None:
        """Run in the current thread until SIGINT or SIGTERM, then close."""
        loop = self.workers[0].loop
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.stop, signum)
        try:
            loop.run_until_complete(self.async_run())
        except asyncio.CancelledError:
            pass
        finally:
            loop.run_until_complete(self.close())
