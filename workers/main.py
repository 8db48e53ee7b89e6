"""The ARQ worker: one function runs every job kind; cron jobs keep PostgreSQL and Redis agreeing.

Run with `jobrelay worker [--queue NAME ...]`: one ARQ worker per queue served, all in one
process on one set of connections (see `workers.group`). `arq workers.main.WorkerSettings`
serves the default queue only.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from arq import cron, func
from arq.worker import Worker

from jobrelay.config import Settings, get_settings
from jobrelay.kinds import DEFAULT_QUEUE, load_kinds
from jobrelay.queue import RUN_JOB, queue_key, redis_settings, retry_later, worker_pool
from jobrelay.runtime import maintenance, runner
from jobrelay.services import Services, freeze_startup_heap
from jobrelay.webhooks import delivery as webhook_delivery
from jobrelay.webhooks.outbox import DELIVER_WEBHOOK
from workers.group import WorkerGroup
from workers.resilient import ResilientWorker

logger = logging.getLogger("jobrelay.worker")


async def run_job(ctx: dict[str, Any], job_id: str) -> None:
    services: Services = ctx["services"]
    again = await runner.run(
        services, ctx["registry"], uuid.UUID(job_id), delivery=int(ctx.get("job_try", 1))
    )
    if again is not None:
        raise retry_later(again.delay)


async def deliver_webhook(ctx: dict[str, Any], delivery_id: int) -> None:
    not_due = await webhook_delivery.deliver(ctx["services"], delivery_id)
    if not_due is not None:
        raise retry_later(not_due.delay)


async def reconcile(ctx: dict[str, Any]) -> None:
    await maintenance.reconcile(ctx["services"])


async def purge(ctx: dict[str, Any]) -> None:
    await maintenance.purge(ctx["services"])


async def aggregate_stats(ctx: dict[str, Any]) -> None:
    await maintenance.aggregate(ctx["services"])


async def check_generator(ctx: dict[str, Any]) -> None:
    await maintenance.check_generator(ctx["services"])


async def startup(ctx: dict[str, Any]) -> None:
    """Open the process's services, unless the worker group shares its own (`services` set)."""
    settings: Settings = ctx.get("settings") or get_settings()
    ctx["settings"] = settings
    ctx["registry"] = load_kinds().runners()
    if ctx.get("services") is None:
        ctx["services"] = await Services.open(settings)
        ctx["owns_services"] = True
        freeze_startup_heap()


async def shutdown(ctx: dict[str, Any]) -> None:
    services: Services | None = ctx.get("services")
    if services is not None and ctx.get("owns_services"):
        await services.close()


def worker_options(
    settings: Settings, *, queue: str = DEFAULT_QUEUE, with_cron: bool = True
) -> dict[str, Any]:
    """ARQ options of the worker of one queue; tuned past ARQ's defaults, which cap a worker
    near 200 jobs/s. Cron work goes on one worker per process (`with_cron`); it is `unique`,
    so it runs once per tick across every process."""
    interval = max(1, min(60, settings.reconcile_interval_seconds))
    kinds = load_kinds()
    return {
        "functions": [
            func(
                run_job,
                name=RUN_JOB,
                max_tries=10_000,
                timeout=kinds.longest_deadline(settings) + 60,
            ),
            func(
                deliver_webhook,
                name=DELIVER_WEBHOOK,
                max_tries=1_000,
                timeout=settings.webhook_timeout + 30,
            ),
        ],
        "cron_jobs": _cron_jobs(interval) if with_cron else [],
        "on_startup": startup,
        "on_shutdown": shutdown,
        "redis_settings": redis_settings(settings),
        "queue_name": queue_key(settings.queue_name, queue),
        "max_jobs": settings.worker_max_jobs,
        "poll_delay": settings.worker_poll_delay,
        "queue_read_limit": settings.worker_queue_read_limit,
        "keep_result": 0,
        "allow_abort_jobs": True,
        "handle_signals": True,
        "health_check_interval": 30,
    }


def _cron_jobs(interval: int) -> list[Any]:
    return [
        cron(
            reconcile,
            second=set(range(0, 60, interval)),
            run_at_startup=True,
            unique=True,
            timeout=120,
        ),
        cron(purge, minute=17, second=0, unique=True, timeout=1800),
        cron(aggregate_stats, minute=7, second=0, run_at_startup=True, unique=True, timeout=600),
        cron(
            check_generator,
            second={5, 20, 35, 50},
            run_at_startup=True,
            unique=True,
            timeout=30,
        ),
    ]


def use_uvloop() -> None:
    """Run a worker of its own process on uvloop, as uvicorn runs the API: a worker's own CPU goes
    mostly to socket round trips (several to PostgreSQL and Redis per job), which uvloop makes
    cheaper. A worker started inside a running loop (`jobrelay dev`, tests) keeps that loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        try:
            import uvloop
        except ImportError:
            return
        asyncio.set_event_loop(uvloop.new_event_loop())


def make_worker(
    settings: Settings | None = None, *, queues: Sequence[str] | None = None, **overrides: Any
) -> WorkerGroup:
    """The workers of one process: one per queue in `queues` (every kind's queue if None)."""
    settings = settings or get_settings()
    served = list(dict.fromkeys(queues)) if queues else load_kinds().queues()
    use_uvloop()
    workers: list[Worker] = []
    for index, queue in enumerate(served):
        options = {
            **worker_options(settings, queue=queue, with_cron=index == 0),
            "redis_pool": worker_pool(settings, queue),
            **overrides,
            "handle_signals": False,
        }
        workers.append(ResilientWorker(ctx={"settings": settings}, **options))
    return WorkerGroup(settings, served, workers)


class WorkerSettings:
    """For `arq workers.main.WorkerSettings`; reads the environment at import."""

    _options = worker_options(get_settings()) if get_settings().redis_url else {}
    functions = _options.get("functions", [])
    cron_jobs = _options.get("cron_jobs", [])
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = _options.get("redis_settings")
    queue_name = _options.get("queue_name")
    max_jobs = _options.get("max_jobs", 200)
    poll_delay = _options.get("poll_delay", 0.05)
    keep_result = 0
    allow_abort_jobs = True
