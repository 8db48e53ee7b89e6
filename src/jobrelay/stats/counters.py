"""Cluster-wide counters kept in one Redis hash, so `/metrics` on any API process reports work
done by every process: jobs submitted in the API, finished in workers or callbacks, webhook
attempts made by workers, callbacks received by any API instance.

Counting is best effort: it happens after commit, and a Redis outage loses increments but never
fails the work being counted. PostgreSQL stays the record; these are rates to alert on.

Fields of the hash (`|`-separated labels):

    submitted|<kind>                              jobs accepted
    finished|<kind>|<status>                      jobs reaching a terminal status
    duration_bucket|<kind>|<status>|<upper bound>  finished jobs whose run took at most that long
    duration_sum|<kind>|<status>                   (seconds; not cumulative across buckets)
    webhook|<outcome>                             outgoing webhook attempts
    callback|<outcome>                            callbacks received from a generator
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError

from jobrelay.db.jobs import ChangedJob
from jobrelay.jobs.states import JobStatus, is_terminal

__all__ = [
    "DURATION_BUCKETS",
    "KEY",
    "Snapshot",
    "bound_label",
    "count_callback",
    "count_delivery",
    "count_job_changes",
    "read",
]

logger = logging.getLogger(__name__)

KEY = "jobrelay:metrics:counters"
DURATION_BUCKETS: tuple[float, ...] = (
    0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, math.inf,
)  # fmt: skip


def _bucket(seconds: float) -> str:
    for bound in DURATION_BUCKETS:
        if seconds <= bound:
            return bound_label(bound)
    return "+Inf"


def bound_label(bound: float) -> str:
    """A bucket's upper bound as Prometheus writes it (`le="2.5"`, `le="+Inf"`)."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def _increments(changes: Sequence[ChangedJob]) -> tuple[dict[str, int], dict[str, float]]:
    counts: dict[str, int] = {}
    sums: dict[str, float] = {}
    for change in changes:
        event, job = change.event, change.job
        status = str(event["status"])
        if status == JobStatus.QUEUED.value and event["type"] == "status":
            if not (event.get("data") or {}).get("retry") and int(job.attempts) == 0:
                key = f"submitted|{job.kind}"
                counts[key] = counts.get(key, 0) + 1
            continue
        if not is_terminal(status):
            continue
        labels = f"{job.kind}|{status}"
        counts[f"finished|{labels}"] = counts.get(f"finished|{labels}", 0) + 1
        if job.started_at is not None and job.completed_at is not None:
            seconds = max(0.0, (job.completed_at - job.started_at).total_seconds())
            bucket = f"duration_bucket|{labels}|{_bucket(seconds)}"
            counts[bucket] = counts.get(bucket, 0) + 1
            sums[f"duration_sum|{labels}"] = sums.get(f"duration_sum|{labels}", 0.0) + seconds
    return counts, sums


async def _apply(redis: Redis, counts: dict[str, int], sums: dict[str, float]) -> None:
    if not counts and not sums:
        return
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for name, count in counts.items():
                pipe.hincrby(KEY, name, count)
            for name, total in sums.items():
                pipe.hincrbyfloat(KEY, name, total)
            await pipe.execute()
    except (RedisError, OSError) as exc:
        logger.debug("metrics counters not updated: %s", exc)


async def count_job_changes(redis: Redis, changes: Sequence[ChangedJob]) -> None:
    """Count submissions and endings among a committed transaction's job changes."""
    counts, sums = _increments(changes)
    await _apply(redis, counts, sums)


async def count_delivery(redis: Redis, outcome: str) -> None:
    await _apply(redis, {f"webhook|{outcome}": 1}, {})


async def count_callback(redis: Redis, outcome: str) -> None:
    await _apply(redis, {f"callback|{outcome}": 1}, {})


@dataclass
class Snapshot:
    """The counters as read at one moment, split by family."""

    submitted: dict[str, int] = field(default_factory=dict)
    finished: dict[tuple[str, str], int] = field(default_factory=dict)
    duration_buckets: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    duration_sums: dict[tuple[str, str], float] = field(default_factory=dict)
    webhooks: dict[str, int] = field(default_factory=dict)
    callbacks: dict[str, int] = field(default_factory=dict)


async def read(redis: Redis) -> Snapshot:
    raw: dict[bytes, bytes] = await redis.hgetall(KEY)  # type: ignore[misc]
    snapshot = Snapshot()
    for name_bytes, value_bytes in raw.items():
        parts = name_bytes.decode(errors="replace").split("|")
        value = value_bytes.decode()
        family = parts[0]
        if family == "submitted" and len(parts) == 2:
            snapshot.submitted[parts[1]] = int(value)
        elif family == "finished" and len(parts) == 3:
            snapshot.finished[(parts[1], parts[2])] = int(value)
        elif family == "duration_bucket" and len(parts) == 4:
            snapshot.duration_buckets.setdefault((parts[1], parts[2]), {})[parts[3]] = int(value)
        elif family == "duration_sum" and len(parts) == 3:
            snapshot.duration_sums[(parts[1], parts[2])] = float(value)
        elif family == "webhook" and len(parts) == 2:
            snapshot.webhooks[parts[1]] = int(value)
        elif family == "callback" and len(parts) == 2:
            snapshot.callbacks[parts[1]] = int(value)
    return snapshot
