"""What must hold after any fault, read straight from the stack's PostgreSQL:

- every status change is allowed by the transition table (`processing → processing` only as a
  new attempt, after a worker was lost);
- progress never goes down within an attempt (a retry's `queued` starts the count again);
- nothing is stored twice: one `started` event per attempt, one ending per run, a quiz's
  questions once each, an applied callback once.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from jobrelay.jobs.states import can_transition

TERMINAL = {"completed", "failed", "canceled"}


@dataclass
class Report:
    jobs: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)

    @property
    def non_terminal(self) -> list[str]:
        return [p for p in self.problems if p.startswith("not terminal")]

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(self.problems[:40])


def dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def fetch(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn(database_url))
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


def check_events(job_id: str, events: list[Any]) -> list[str]:
    """Problems in one job's events (ordered by id)."""
    problems: list[str] = []
    status_events = [e for e in events if e["type"] == "status"]
    for before, after in itertools.pairwise(status_events):
        source, target = before["status"], after["status"]
        if source == target == "processing":
            if after["attempt"] <= before["attempt"]:
                problems.append(
                    f"{job_id}: processing → processing within attempt {after['attempt']}"
                )
        elif not can_transition(source, target):
            problems.append(f"{job_id}: {source} → {target} (event {after['id']})")
    starts: dict[int, int] = {}
    for event in status_events:
        if event["status"] == "processing":
            starts[event["attempt"]] = starts.get(event["attempt"], 0) + 1
    problems += [
        f"{job_id}: attempt {attempt} started {count} times"
        for attempt, count in starts.items()
        if count > 1
    ]
    segment: tuple[int, int] | None = None
    highest = 0
    run = 0
    for event in events:
        if event["type"] == "status" and event["status"] == "queued":
            run += 1
        key = (run, event["attempt"])
        if key != segment:
            segment, highest = key, event["progress"]
        elif event["progress"] < highest:
            problems.append(
                f"{job_id}: progress went down {highest} → {event['progress']} in attempt "
                f"{event['attempt']} (event {event['id']})"
            )
        highest = max(highest, event["progress"])
    endings = sum(1 for e in status_events if e["status"] in TERMINAL)
    runs = sum(1 for e in status_events if e["status"] == "queued")
    if endings > runs:
        problems.append(f"{job_id}: {endings} endings for {runs} run(s)")
    return problems


async def check_jobs(
    database_url: str,
    job_ids: Iterable[str],
    *,
    quiz_size: int | None = None,
    require_end: bool = True,
) -> Report:
    """Check every invariant for these jobs (and, with `require_end`, that each one ended);
    `problems` lists each violation."""
    ids = [uuid.UUID(j) for j in job_ids]
    report = Report(jobs=len(ids))
    conn = await asyncpg.connect(dsn(database_url))
    try:
        jobs = await conn.fetch(
            "SELECT id, kind, status, attempts, input FROM jobs WHERE id = ANY($1)", ids
        )
        events = await conn.fetch(
            "SELECT id, job_id, type, status, progress, attempt FROM job_events "
            "WHERE job_id = ANY($1) ORDER BY id",
            ids,
        )
        questions = await conn.fetch(
            "SELECT job_id, count(*) AS n, count(DISTINCT position) AS positions "
            "FROM questions WHERE job_id = ANY($1) GROUP BY job_id",
            ids,
        )
        applied = await conn.fetch(
            "SELECT webhook_id, count(*) AS n FROM callbacks "
            "WHERE job_id = ANY($1) AND applied AND webhook_id IS NOT NULL "
            "GROUP BY webhook_id HAVING count(*) > 1",
            ids,
        )
    finally:
        await conn.close()
    found = {str(row["id"]): row for row in jobs}
    for job_id in map(str, ids):
        if job_id not in found:
            report.problems.append(f"lost: job {job_id} is not in PostgreSQL")
    per_job: dict[str, list[Any]] = {}
    for event in events:
        per_job.setdefault(str(event["job_id"]), []).append(event)
    for job_id, row in found.items():
        report.by_status[row["status"]] = report.by_status.get(row["status"], 0) + 1
        report.attempts[job_id] = row["attempts"]
        if require_end and row["status"] not in TERMINAL:
            report.problems.append(f"not terminal: {job_id} is {row['status']}")
        report.problems += check_events(job_id, per_job.get(job_id, []))
    stored = {str(row["job_id"]): row["n"] for row in questions}
    for row in questions:
        if row["n"] != row["positions"]:
            report.problems.append(f"{row['job_id']}: a question position stored twice")
    for job_id, job in found.items():
        if job["kind"] != "quiz.generate":
            continue
        expected = quiz_size or _quiz_size(job)
        count = stored.get(job_id, 0)
        if count > expected or (job["status"] == "completed" and count != expected):
            report.problems.append(f"{job_id}: {count} questions stored for {expected}")
    for row in applied:
        report.problems.append(f"callback {row['webhook_id']} applied {row['n']} times")
    return report


def _quiz_size(job: Any) -> int:
    value = job["input"]
    data = json.loads(value) if isinstance(value, str) else value
    return int(data.get("quiz_size", 0))
