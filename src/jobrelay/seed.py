"""Demo data for `jobrelay db seed`: users with API keys, and jobs of every kind that offers
demo data (`@kind(..., demo=...)`, see `jobrelay.kinds.demo`) in every status with the events a
real run leaves, so the dashboard and the API have something to show.

Finished jobs are spread over the last two weeks (so `/v1/stats` and the daily aggregation have
history); queued and processing ones are from the last minutes. Running workers will pick the
queued ones up (the reconciler enqueues them), exactly as they would real ones; the processing
ones wait for their deadline like a quiz whose generator went quiet.

Each run adds a new batch: new users (`alice`, then `alice-2`, ...) with new keys, and new jobs
tagged `{"seed_batch": N}` in their metadata. Keys are stored hashed, so a batch's keys are
printed by the run that made them, never again.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from jobrelay.db import seed as seed_db
from jobrelay.jobs.lifecycle import QUEUED_MESSAGE
from jobrelay.kinds import KindSpec, load_kinds
from jobrelay.kinds.demo import Demo
from jobrelay.services import Services
from jobrelay.users import service as users_service
from jobrelay.users.schemas import UserCreate

__all__ = ["SeedReport", "SeededUser", "seed"]

# One story per entry, for every demo user and kind.
STORIES = (
    "completed",
    "completed",
    "completed",
    "retried_completed",
    "failed",
    "canceled_queued",
    "canceled_processing",
    "processing",
    "queued",
)
HISTORY_DAYS = 14


@dataclass(frozen=True)
class DemoUser:
    name: str
    role: str
    tokens: int
    expired: bool = False


DEMO_USERS = (
    DemoUser("demo-admin", "admin", 1_000_000),
    DemoUser("alice", "user", 50_000),
    DemoUser("bob", "user", 1_400),
    DemoUser("carol", "user", 0, expired=True),
)


@dataclass(frozen=True)
class SeededUser:
    id: int
    name: str
    role: str
    tokens: int
    api_key: str


@dataclass
class SeedReport:
    batch: int
    users: list[SeededUser] = field(default_factory=list)
    jobs: dict[str, int] = field(default_factory=dict)  # per status
    events: int = 0
    rows: dict[str, int] = field(default_factory=dict)  # the kinds' own rows, by sort

    @property
    def questions(self) -> int:
        return self.rows.get("questions", 0)

    @property
    def students(self) -> int:
        return self.rows.get("students", 0)


@dataclass
class _Job:
    """One job's row and its events, built along a timeline."""

    row: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def event(
        self,
        seconds_later: float,
        type_: str,
        status: str,
        progress: int,
        message: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.at += dt.timedelta(seconds=seconds_later)
        self.row.update(status=status, progress=progress, message=message, updated_at=self.at)
        self.events.append(
            {
                "job_id": self.row["id"],
                "type": type_,
                "status": status,
                "progress": progress,
                "message": message,
                "attempt": self.row["attempts"],
                "data": data or {},
                "at": self.at,
            }
        )


def _build(
    story: str, spec: KindSpec, demo: Demo, user_id: int, batch: int, index: int, rng: random.Random
) -> _Job:
    now = dt.datetime.now(dt.UTC)
    active = story in ("queued", "processing")
    created = now - (
        dt.timedelta(seconds=rng.uniform(10, 600))
        if active
        else dt.timedelta(days=rng.uniform(0, HISTORY_DAYS))
    )
    deadline = 900
    row: dict[str, Any] = {
        "id": uuid.uuid4(),
        "kind": spec.name,
        "user_id": user_id,
        "input": demo.inputs(f"{batch}-{index:03d}", rng),
        "metadata": {seed_db.SEED_BATCH_KEY: batch, "source": "jobrelay db seed"},
        "attempts": 0,
        "max_attempts": 3,
        "deadline_seconds": deadline,
        "submitted_by": user_id,
        "created_at": created,
        "result": None,
        "error": None,
        "external_id": None,
        "started_at": None,
        "completed_at": None,
        "deadline_at": None,
    }
    job = _Job(row=row, at=created)
    job.event(0, "status", "queued", 0, QUEUED_MESSAGE)
    if story == "queued":
        return job
    if story == "canceled_queued":
        job.event(rng.uniform(1, 30), "status", "canceled", 0, "Canceled by request")
        row["completed_at"] = job.at
        return job
    run = rng.uniform(*demo.run_seconds)
    if story == "retried_completed":
        _attempt(job, spec, demo, rng, run / 2, steps=1)
        row["error"] = _failure(demo)
        job.event(0.2, "status", "failed", row["progress"], row["error"]["message"])
        job.event(rng.uniform(5, 60), "status", "queued", 0, QUEUED_MESSAGE, {"retry": True})
        row.update(max_attempts=6, error=None, started_at=None)
    _attempt(job, spec, demo, rng, run, steps=None if story != "processing" else 1)
    if demo.external_id:
        row["external_id"] = f"gen-{row['id'].hex[:12]}"
    if story == "processing":
        row["deadline_at"] = now + dt.timedelta(seconds=deadline)
        return job
    if story == "canceled_processing":
        job.event(0.5, "status", "canceled", row["progress"], "Canceled by request")
    elif story == "failed":
        row["error"] = _failure(demo)
        job.event(0.5, "status", "failed", row["progress"], row["error"]["message"])
    else:
        row["result"] = demo.result(row, run)
        job.event(0.3, "status", "completed", 100, demo.done_message)
    row["completed_at"] = job.at
    return job


def _failure(demo: Demo) -> dict[str, str]:
    code, message = demo.failure
    return {"code": code, "message": message}


def _attempt(
    job: _Job, spec: KindSpec, demo: Demo, rng: random.Random, run: float, *, steps: int | None
) -> None:
    row = job.row
    row["attempts"] += 1
    progress, message = spec.runner.start_progress, spec.runner.start_message
    job.event(rng.uniform(0.05, 2), "status", "processing", progress, message, {"started": True})
    row["started_at"] = row["started_at"] or job.at
    planned = list(demo.steps)
    for progress, message in planned[: steps if steps is not None else len(planned)]:
        job.event(run / (len(planned) + 1), "progress", "processing", progress, message)


async def _create_users(services: Services, batch: int) -> list[SeededUser]:
    made = []
    for demo in DEMO_USERS:
        name = demo.name if batch == 1 else f"{demo.name}-{batch}"
        expires = dt.datetime.now(dt.UTC) - dt.timedelta(days=30) if demo.expired else None
        user, key = await users_service.create_user(
            services,
            UserCreate(
                name=name, role=demo.role, tokens=demo.tokens, subscription_expires_at=expires
            ),
        )
        made.append(SeededUser(user.id, user.name, user.role, user.tokens, key))
    return made


async def seed(services: Services, *, rng_seed: int | None = None) -> SeedReport:
    """Add one batch of demo users and jobs; returns what was made, API keys included."""
    async with services.engine.connect() as conn:
        batch = await seed_db.last_seed_batch(conn) + 1
    rng = random.Random(rng_seed if rng_seed is not None else batch)
    report = SeedReport(batch=batch, users=await _create_users(services, batch))
    built: list[_Job] = []
    index = 0
    kinds = load_kinds()
    demos = {name: spec.demo for name, spec in kinds.items() if spec.demo is not None}
    for user in report.users:
        if user.role == "admin":
            continue
        for name, demo in demos.items():
            for story in STORIES:
                index += 1
                built.append(_build(story, kinds[name], demo, user.id, batch, index, rng))
    built.sort(key=lambda job: job.row["created_at"])
    async with services.engine.begin() as conn:
        await seed_db.insert_jobs(conn, [job.row for job in built])
        await seed_db.insert_events(conn, [event for job in built for event in job.events])
        for job in built:
            row = job.row
            store = demos[row["kind"]].store
            if store is None or row["status"] != "completed":
                continue
            stored = await store(conn, row)
            if stored.result is not None:
                await seed_db.set_result(conn, row["id"], stored.result)
            for sort, count in stored.counts.items():
                report.rows[sort] = report.rows.get(sort, 0) + count
    for job in built:
        status = job.row["status"]
        report.jobs[status] = report.jobs.get(status, 0) + 1
        report.events += len(job.events)
    return report
