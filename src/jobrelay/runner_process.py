"""Run the API, the worker and the reference generator in one event loop (for `jobrelay dev`),
or each alone (for production), with one clean shutdown on Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Generator
from typing import Any

import uvicorn

from jobrelay.config import Settings

logger = logging.getLogger(__name__)


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to us, so several share one loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def api_server(settings: Settings, host: str, port: int, **options: Any) -> uvicorn.Server:
    from jobrelay.main import create_app

    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=5,
        **options,
    )
    return _QuietServer(config)


def generator_server(settings: Settings, host: str, port: int) -> uvicorn.Server:
    from jobrelay.generator.app import create_app as create_generator

    config = uvicorn.Config(
        create_generator(settings),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=3,
    )
    return _QuietServer(config)


async def run_together(
    servers: list[uvicorn.Server], *, with_worker: bool, settings: Settings
) -> None:
    """Serve until SIGINT/SIGTERM, then stop everything, worker first."""
    from workers.main import make_worker

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(server.serve()) for server in servers]
    worker = make_worker(settings, handle_signals=False) if with_worker else None
    if worker is not None:
        tasks.append(asyncio.create_task(worker.async_run()))
    waiter = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if task is not waiter and task.exception() is not None:
            logger.error("a component stopped: %r", task.exception())
    if worker is not None:
        tasks[-1].cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await tasks[-1]
        # ARQ may still be finishing a job's bookkeeping; its cancellation must not abort the
        # rest of the shutdown (the servers below and the embedded databases after them).
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await worker.close()
    for server in servers:
        server.should_exit = True
    await asyncio.gather(*tasks, return_exceptions=True)
    waiter.cancel()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
