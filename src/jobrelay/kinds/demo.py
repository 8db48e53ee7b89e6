"""Demo data a kind may offer `jobrelay db seed`: believable inputs, steps, results and failures,
so the dashboard and the API have jobs of that kind in every status to show.

A kind declares it with `@kind(..., demo=Demo(...))` (or `delegated(..., demo=...)`); kinds
without one are left out of the demo data.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["Demo", "DemoRows"]


@dataclass(frozen=True)
class DemoRows:
    """What `store` wrote for a completed demo job: a result to set (None: keep it) and how
    many rows of each sort, for the seed's report."""

    result: dict[str, Any] | None = None
    counts: dict[str, int] = field(default_factory=dict)


def _no_result(job: dict[str, Any], seconds: float) -> dict[str, Any] | None:
    return {}


@dataclass(frozen=True)
class Demo:
    """- `inputs(label, rng)`: a job's input;
    - `steps`: the progress steps of a run, after the kind's start step;
    - `run_seconds`: how long a run takes, at random between the two;
    - `result(job_row, seconds)`: a completed job's result (None: `store` sets it);
    - `failure`: the `(code, message)` of a failed job;
    - `done_message`: a completed job's message;
    - `external_id`: the job has an external worker's task id (delegated kinds);
    - `store(conn, job_row)`: rows of the kind's own for a completed job."""

    inputs: Callable[[str, random.Random], dict[str, Any]]
    steps: Sequence[tuple[int, str]] = ()
    run_seconds: tuple[float, float] = (1.0, 20.0)
    result: Callable[[dict[str, Any], float], dict[str, Any] | None] = _no_result
    failure: tuple[str, str] = ("job_error", "The job failed.")
    done_message: str = "Job completed"
    external_id: bool = False
    store: Callable[[AsyncConnection, dict[str, Any]], Awaitable[DemoRows]] | None = None
