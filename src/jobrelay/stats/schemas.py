"""Body of `GET /v1/stats`."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field


class Durations(BaseModel):
    """Run time (`completed_at - started_at`) of recently completed jobs, in seconds."""

    p50: float | None
    p95: float | None
    samples: int = Field(description="How many completed jobs the percentiles are taken over.")


class DailyStat(BaseModel):
    day: dt.date
    kind: str
    status: str
    count: int
    p50_seconds: float | None
    p95_seconds: float | None


class StatsOut(BaseModel):
    """Counts per kind and status, durations, queue depth. Admins see every job, users their own."""

    scope: Literal["all", "own"]
    jobs: dict[str, dict[str, int]] = Field(description="kind → status → number of jobs")
    by_status: dict[str, int]
    total: int
    durations: dict[str, Durations] = Field(
        description="Per kind, over its latest completed jobs (up to 1000 of each kind)."
    )
    overall: Durations
    queue_depth: int = Field(description="Jobs waiting to start (status `queued`).")
    queues: dict[str, int] = Field(
        default_factory=dict,
        description="Jobs waiting to start per queue (each kind runs on its queue).",
    )
    running: int = Field(description="Jobs being worked on (status `processing`).")
    generated_at: dt.datetime
    history: list[DailyStat] = Field(
        default_factory=list,
        description="With `?days=N` (admins): the aggregated days, oldest first.",
    )
