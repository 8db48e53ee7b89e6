"""The drain benchmark's Celery baseline: Celery 5.7 with its Redis broker, two prefork
processes, psycopg, the same rows as a jobrelay prompt job (claim, the four steps in one
transaction, completion with the token charge; a publish per event), like
`bench/byhand_worker.py`.

It runs in an interpreter of its own (`bench.drain.celery_python`): kombu's Redis transport
needs redis-py 6.1 or later, and ARQ needs redis-py below 6, so Celery cannot share jobrelay's
environment. It imports nothing of jobrelay's.

Run: `python -m bench.celery_drain fill REDIS_URL IDS_FILE` queues one task per job id (a file
of ids, one a line); `python -m bench.celery_drain worker DATABASE_DSN REDIS_URL` starts the
worker (it prints `ready`).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import psycopg
import redis
from celery import Celery
from celery.signals import worker_ready

from bench.drain_sql import CHARGE, CLAIM, COMPLETE, EVENT, STEPS
from bench.drain_sql import STEP as STEP_SQL

QUEUE = "jobrelay-drain"
app = Celery("jobrelay_drain", broker=os.environ.get("BENCH_CELERY_BROKER", "redis://"))
app.conf.update(
    task_default_queue=QUEUE,
    task_acks_late=False,
    worker_prefetch_multiplier=16,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
_state: dict[str, Any] = {}


def _conn() -> tuple[psycopg.Connection[Any], redis.Redis]:
    if "pg" not in _state:
        _state["pg"] = psycopg.connect(os.environ["BENCH_CELERY_DSN"])
        _state["redis"] = redis.Redis.from_url(os.environ["BENCH_CELERY_REDIS"])
    return _state["pg"], _state["redis"]


def _run(cur: psycopg.Cursor[Any], query: str, *args: Any) -> None:
    """Run a statement written with asyncpg's $n placeholders (as psycopg's named ones)."""
    for n in range(9, 0, -1):
        query = query.replace(f"${n}", f"%(p{n})s")
    cur.execute(query, {f"p{n}": value for n, value in enumerate(args, 1)})


def _event(
    cur: psycopg.Cursor[Any], job: Any, type_: str, status: str, progress: int, message: str
) -> dict[str, Any]:
    _run(cur, EVENT, job[0], type_, status, progress, message, job[3], "{}")
    event_id, at = cur.fetchone()  # type: ignore[misc]
    return {"id": event_id, "job_id": str(job[0]), "type": type_, "status": status,
            "progress": progress, "message": message, "at": at.isoformat(), "data": {}}  # fmt: skip


@app.task(name="run_job")
def run_job(job_id: str) -> None:
    pg, rds = _conn()
    channel = f"jobrelay:events:{job_id}"
    with pg.transaction(), pg.cursor() as cur:
        _run(cur, CLAIM, job_id)
        job = cur.fetchone()
        if job is None:
            return
        started = _event(cur, job, "status", "processing", 10, "Initializing AI generation...")
    rds.publish(channel, json.dumps(started))
    events = []
    with pg.transaction(), pg.cursor() as cur:
        for progress, message in STEPS:
            _run(cur, STEP_SQL, job[0], progress, message, job[3])
            events.append(_event(cur, job, "progress", "processing", progress, message))
    for event in events:
        rds.publish(channel, json.dumps(event))
    prompt = job[2]["manual_prompt"]
    result = {"prompt": prompt.upper(), "fallback": False, "tokens_used": 1, "model": "hand"}
    with pg.transaction(), pg.cursor() as cur:
        _run(cur, COMPLETE, job[0], json.dumps(result), job[3])
        _run(cur, CHARGE, job[1], 1)
        done = _event(cur, job, "status", "completed", 100, "Prompt generated successfully")
    rds.publish(channel, json.dumps(done))


@worker_ready.connect
def _ready(**_: Any) -> None:
    print("ready", flush=True)


def fill(redis_url: str, job_ids: list[str]) -> None:
    """Queue one task per job before the worker starts."""
    app.conf.broker_url = redis_url
    with app.producer_or_acquire() as producer:
        for job_id in job_ids:
            run_job.apply_async((job_id,), producer=producer)


def main() -> None:
    if sys.argv[1] == "fill":
        with open(sys.argv[3]) as ids:
            fill(sys.argv[2], [line.strip() for line in ids if line.strip()])
        return
    dsn, redis_url = sys.argv[2], sys.argv[3]
    os.environ.update(
        BENCH_CELERY_DSN=dsn, BENCH_CELERY_REDIS=redis_url, BENCH_CELERY_BROKER=redis_url
    )
    app.conf.broker_url = redis_url
    app.worker_main(
        [
            "worker",
            "--concurrency=2",
            "--pool=prefork",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--queues={QUEUE}",
        ]
    )


if __name__ == "__main__":
    main()
