"""Demo data for `jobrelay db seed`: users with API keys, and jobs of every kind in every status
with the events a real run leaves, so the dashboard and the API have something to show.

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
from jobrelay.quizzes.tasks import question_out
from jobrelay.services import Services
from jobrelay.users import service as users_service
from jobrelay.users.schemas import UserCreate

__all__ = ["SeedReport", "SeededUser", "seed"]

KINDS = ("prompt.generate", "quiz.generate", "records.ingest")
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
QUIZ_SIZE = 5
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
    questions: int = 0
    students: int = 0


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


def _inputs(kind: str, label: str, rng: random.Random) -> dict[str, Any]:
    if kind == "prompt.generate":
        topics = ["photosynthesis", "compound interest", "the water cycle", "binary search"]
        return {"manual_prompt": f"Explain {rng.choice(topics)} to a ten year old (#{label})"}
    if kind == "quiz.generate":
        return {
            "quiz_size": QUIZ_SIZE,
            "declared_level": rng.choice(["Beginner", "Intermediate", "Advanced"]),
            "goals": "job",
            "profession": rng.choice(["software engineer", "nurse", "accountant"]),
            "referred_frequency": "daily",
            "motivation_level": rng.randint(5, 10),
            "preferred_topics": ["cloud computing", "API design"],
            "weak_skills": ["gerunds vs infinitives"],
            "extra_instructions": "Realistic workplace scenarios.",
        }
    return {"records": [_student(f"seed-{label}-{n}", rng) for n in range(3)]}


def _student(student_id: str, rng: random.Random) -> dict[str, Any]:
    first = rng.choice(["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald"])
    last = rng.choice(["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth"])
    return {
        "student_id": student_id,
        "first_name": first,
        "last_name": last,
        "email": f"{first}.{last}.{student_id}@school.example".lower(),
        "grade": rng.randint(1, 12),
        "date_of_birth": f"{rng.randint(2008, 2018)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
        "school_id": f"school-{rng.randint(1, 5)}",
    }


def _steps(kind: str) -> list[tuple[int, str]]:
    if kind == "prompt.generate":
        return [
            (30, "Checking tokens..."),
            (50, "Generating enhanced prompt with AI..."),
            (70, "Waiting for AI response..."),
            (90, "Finalizing..."),
        ]
    if kind == "quiz.generate":
        return [
            (5, "The generator accepted the quiz; waiting for questions..."),
            (40, "Generating questions"),
            (80, "Reviewing questions"),
        ]
    return [(34, "Processed 1/3 records"), (67, "Processed 2/3 records")]


def _start(kind: str) -> tuple[int, str]:
    return {
        "prompt.generate": (10, "Initializing AI generation..."),
        "quiz.generate": (5, "Sending the quiz request to the generator..."),
    }.get(kind, (0, "Job started"))


def _run_seconds(kind: str, rng: random.Random) -> float:
    low, high = {"prompt.generate": (2, 9), "quiz.generate": (30, 300)}.get(kind, (1, 20))
    return rng.uniform(low, high)


def _result(kind: str, job: dict[str, Any], seconds: float) -> dict[str, Any] | None:
    if kind == "prompt.generate":
        topic = job["input"]["manual_prompt"]
        return {
            "prompt": f"You are a patient teacher. {topic}. Use one everyday example.",
            "fallback": False,
            "tokens_used": 700,
            "model": "offline",
        }
    if kind == "records.ingest":
        return {
            "total_records": 3,
            "processed_records": 3,
            "failed_records": 0,
            "progress_percentage": 100,
            "duration": round(seconds, 3),
            "errors": [],
        }
    return None  # quizzes: set once their questions are stored


def _failure(kind: str) -> dict[str, str]:
    return {
        "prompt.generate": {
            "code": "insufficient_tokens",
            "message": "This generation costs 700 tokens and the balance is 0.",
        },
        "quiz.generate": {
            "code": "generator_unavailable",
            "message": "The quiz generator could not be reached on 5 tries.",
        },
        "records.ingest": {"code": "job_error", "message": "The enrichment service timed out."},
    }[kind]


def _build(story: str, kind: str, user_id: int, batch: int, index: int, rng: random.Random) -> _Job:
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
        "kind": kind,
        "user_id": user_id,
        "input": _inputs(kind, f"{batch}-{index:03d}", rng),
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
    run = _run_seconds(kind, rng)
    if story == "retried_completed":
        _attempt(job, kind, rng, run / 2, steps=1)
        row["error"] = _failure(kind)
        job.event(0.2, "status", "failed", row["progress"], row["error"]["message"])
        job.event(rng.uniform(5, 60), "status", "queued", 0, QUEUED_MESSAGE, {"retry": True})
        row.update(max_attempts=6, error=None, started_at=None)
    _attempt(job, kind, rng, run, steps=None if story != "processing" else 1)
    if kind == "quiz.generate":
        row["external_id"] = f"gen-{row['id'].hex[:12]}"
    if story == "processing":
        row["deadline_at"] = now + dt.timedelta(seconds=deadline)
        return job
    if story == "canceled_processing":
        job.event(0.5, "status", "canceled", row["progress"], "Canceled by request")
    elif story == "failed":
        row["error"] = _failure(kind)
        job.event(0.5, "status", "failed", row["progress"], row["error"]["message"])
    else:
        row["result"] = _result(kind, row, run)
        job.event(0.3, "status", "completed", 100, _done_message(kind))
    row["completed_at"] = job.at
    return job


def _attempt(job: _Job, kind: str, rng: random.Random, run: float, *, steps: int | None) -> None:
    row = job.row
    row["attempts"] += 1
    progress, message = _start(kind)
    job.event(rng.uniform(0.05, 2), "status", "processing", progress, message, {"started": True})
    row["started_at"] = row["started_at"] or job.at
    planned = _steps(kind)
    for progress, message in planned[: steps if steps is not None else len(planned)]:
        job.event(run / (len(planned) + 1), "progress", "processing", progress, message)


def _done_message(kind: str) -> str:
    return {
        "prompt.generate": "Prompt generated successfully",
        "quiz.generate": f"Quiz ready: {QUIZ_SIZE} questions",
        "records.ingest": "Ingested 3 records: 3 stored, 0 rejected",
    }[kind]


def _questions(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "job_id": job["id"],
            "user_id": job["user_id"],
            "position": position,
            "sentence": f"In a stand-up meeting (#{position}), which sentence is MOST appropriate?",
            "option_a": "I have finished the review yesterday.",
            "option_b": "I finished the review yesterday.",
            "option_c": "I am finishing the review yesterday.",
            "option_d": "I finish the review yesterday.",
            "correct_answer": "B",
            "explanation": "A finished action at a stated past time takes the past simple.",
            "type": "sentence_completion",
            "difficulty": job["input"]["declared_level"].lower(),
            "score": 1,
            "context": "agile meeting",
            "created_at": job["completed_at"],
        }
        for position in range(1, QUIZ_SIZE + 1)
    ]


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
    for user in report.users:
        if user.role == "admin":
            continue
        for kind in KINDS:
            for story in STORIES:
                index += 1
                built.append(_build(story, kind, user.id, batch, index, rng))
    built.sort(key=lambda job: job.row["created_at"])
    async with services.engine.begin() as conn:
        await seed_db.insert_jobs(conn, [job.row for job in built])
        await seed_db.insert_events(conn, [event for job in built for event in job.events])
        for job in built:
            row = job.row
            if row["kind"] == "quiz.generate" and row["status"] == "completed":
                stored = await seed_db.insert_questions(conn, _questions(row))
                report.questions += len(stored)
                await seed_db.set_result(
                    conn,
                    row["id"],
                    {
                        "questions": [question_out(q) for q in stored],
                        "questions_created": len(stored),
                        "task_id": row["external_id"],
                    },
                )
            if row["kind"] == "records.ingest" and row["status"] == "completed":
                report.students += await seed_db.insert_students(
                    conn, [_student_row(r, row) for r in row["input"]["records"]]
                )
    for job in built:
        status = job.row["status"]
        report.jobs[status] = report.jobs.get(status, 0) + 1
        report.events += len(job.events)
    return report


def _student_row(record: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    return {
        **record,
        "date_of_birth": dt.date.fromisoformat(record["date_of_birth"]),
        "last_job_id": job["id"],
        "created_at": job["completed_at"],
        "updated_at": job["completed_at"],
    }
