"""What one worker process keeps for all the jobs it runs: the write buffer and the lease renewer.

Both belong to the process's `Services`, not to an ARQ worker: a process serving several queues
runs one ARQ worker per queue, and all of them share one buffer (one transaction per flush for
every job of the process) and one renewer (one statement per interval for every running lease).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from jobrelay.db import batch as batch_db
from jobrelay.runtime.writes import WriteBuffer
from jobrelay.services import Services

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Held:
    attempt: int
    on_lost: Callable[[], None]


@dataclass(eq=False)
class LeaseRenewer:
    """Renews the lease of every job the process runs in one statement, every third of the lease;
    a job that is no longer this attempt's (canceled, taken over) has its body stopped."""

    services: Services
    _held: dict[uuid.UUID, _Held] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    def hold(self, job_id: uuid.UUID, attempt: int, on_lost: Callable[[], None]) -> None:
        self._held[job_id] = _Held(attempt, on_lost)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def release(self, job_id: uuid.UUID, attempt: int) -> None:
        held = self._held.get(job_id)
        if held is not None and held.attempt == attempt:
            del self._held[job_id]

    async def renew_now(self) -> None:
        held = dict(self._held)
        if not held:
            return
        seconds = self.services.settings.lease_seconds
        async with self.services.engine.begin() as conn:
            alive = await batch_db.renew_leases(
                conn, [(job_id, h.attempt) for job_id, h in held.items()], seconds=seconds
            )
        for job_id, h in held.items():
            if job_id not in alive and self._held.get(job_id) is h:
                del self._held[job_id]
                h.on_lost()

    async def _run(self) -> None:
        interval = max(0.5, self.services.settings.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.renew_now()
            except Exception as exc:
                logger.warning("lease renewal failed: %s", exc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


@dataclass(eq=False)
class WorkerRuntime:
    writes: WriteBuffer
    leases: LeaseRenewer

    async def close(self) -> None:
        await self.leases.close()
        await self.writes.close()


def runtime_of(services: Services) -> WorkerRuntime:
    """The process's runtime, made on first use and closed with `services`."""
    runtime = services.worker_runtime
    if isinstance(runtime, WorkerRuntime):
        return runtime
    settings = services.settings
    runtime = WorkerRuntime(
        writes=WriteBuffer(
            services,
            wait_seconds=settings.write_buffer_ms / 1000,
            max_ops=settings.write_buffer_max,
            retry_seconds=settings.write_retry_seconds,
        ),
        leases=LeaseRenewer(services),
    )
    services.worker_runtime = runtime
    services.on_close.append(runtime.close)
    return runtime
