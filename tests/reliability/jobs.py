"""Submitting and following a mix of jobs for the fault-injection tests."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.ingestion.factories import new_prefix, students
from tests.quizzes.helpers import QUIZ
from tests.support.jobs import TERMINAL

QUIZ_SIZE = 5
INGEST_RECORDS = 200


@dataclass
class Submission:
    kind: str
    body: dict[str, Any]
    prefix: str | None = None  # student ids of an ingest job
    job_id: str | None = None
    status_code: int | None = None


def mixed(count: int, rng: random.Random) -> list[Submission]:
    """Prompts, quizzes (via the reference generator) and ingests, interleaved."""
    made: list[Submission] = []
    for index in range(count):
        kind = ("prompt.generate", "quiz.generate", "records.ingest")[index % 3]
        if kind == "prompt.generate":
            body = {"kind": kind, "input": {"manual_prompt": f"Explain topic {index}"}}
            made.append(Submission(kind, body))
        elif kind == "quiz.generate":
            quiz = {**QUIZ, "quiz_size": QUIZ_SIZE, "extra_instructions": f"quiz {index}"}
            made.append(Submission(kind, {"kind": kind, "input": quiz}))
        else:
            prefix = new_prefix()
            records = students(prefix, INGEST_RECORDS)
            made.append(Submission(kind, {"kind": kind, "input": {"records": records}}, prefix))
    rng.shuffle(made)
    return made


async def submit_all(
    client: httpx.AsyncClient, submissions: list[Submission], *, concurrency: int = 8
) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(item: Submission) -> None:
        async with gate:
            response = await client.post("/v1/jobs", json=item.body)
        item.status_code = response.status_code
        if response.status_code == 202:
            item.job_id = response.json()["id"]

    await asyncio.gather(*(one(item) for item in submissions))


@dataclass
class Outcome:
    statuses: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def unfinished(self) -> dict[str, str]:
        return {k: v for k, v in self.statuses.items() if v not in TERMINAL}


async def wait_all_terminal(
    client: httpx.AsyncClient, job_ids: list[str], *, timeout: float
) -> Outcome:
    """Poll until every job is terminal or `timeout` passes; their last statuses either way."""
    started = time.monotonic()
    outcome = Outcome(statuses=dict.fromkeys(job_ids, "unknown"))
    pending = set(job_ids)
    reported = started
    while pending and time.monotonic() - started < timeout:
        for job_id in list(pending):
            try:
                response = await client.get(f"/v1/jobs/{job_id}")
            except httpx.HTTPError:
                continue
            if response.status_code != 200:
                continue
            status = response.json()["status"]
            outcome.statuses[job_id] = status
            if status in TERMINAL:
                pending.discard(job_id)
        if pending:
            if time.monotonic() - reported >= 10:
                reported = time.monotonic()
                counts: dict[str, int] = {}
                for status in outcome.statuses.values():
                    counts[status] = counts.get(status, 0) + 1
                print(f"[{reported - started:5.1f}s] {counts}", flush=True)
            await asyncio.sleep(0.25)
    outcome.seconds = time.monotonic() - started
    return outcome
