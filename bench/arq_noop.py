"""The end-to-end benchmark's baseline: a bare ARQ worker running no-op jobs, with the ARQ tuning
of jobrelay's own worker (max_jobs, poll_delay, queue_read_limit, keep_result, aborts, health).

It counts finished jobs in process (ARQ's `after_job_end` hook, no Redis round trip) and prints
`warm <unix time>` after the first WARM jobs and `done <unix time>` after WARM + COUNT.

Run: `python -m bench.arq_noop REDIS_URL WARM COUNT`.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from arq import func
from arq.worker import Worker
from workers.main import use_uvloop, worker_options

from jobrelay.config import Settings

NOOP = "noop"
TUNING = (
    "redis_settings",
    "queue_name",
    "max_jobs",
    "poll_delay",
    "queue_read_limit",
    "keep_result",
    "allow_abort_jobs",
    "handle_signals",
    "health_check_interval",
)


async def noop(ctx: dict[str, Any], n: int) -> None:
    return None


def make_worker(redis_url: str, warm: int, count: int) -> Worker:
    settings = Settings(_env_file=None, redis_url=redis_url)  # type: ignore[call-arg]
    options = worker_options(settings)
    finished = 0

    async def after_job_end(ctx: dict[str, Any]) -> None:
        nonlocal finished
        finished += 1
        if finished == warm:
            print(f"warm {time.time():.6f}", flush=True)
        if finished == warm + count:
            print(f"done {time.time():.6f}", flush=True)

    async def startup(ctx: dict[str, Any]) -> None:
        print("ready", flush=True)

    use_uvloop()  # the event loop of jobrelay's worker
    return Worker(
        functions=[func(noop, name=NOOP)],
        on_startup=startup,
        after_job_end=after_job_end,
        **{name: options[name] for name in TUNING},
    )


def main() -> None:
    redis_url, warm, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    make_worker(redis_url, warm, count).run()


if __name__ == "__main__":
    main()
