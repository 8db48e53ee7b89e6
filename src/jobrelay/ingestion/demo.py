"""Demo `records.ingest` jobs for `jobrelay db seed`: three students each, stored as a real
run would store them."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from jobrelay.db import seed as seed_db
from jobrelay.kinds.demo import Demo, DemoRows

__all__ = ["DEMO"]


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


def _input(label: str, rng: random.Random) -> dict[str, Any]:
    return {"records": [_student(f"seed-{label}-{n}", rng) for n in range(3)]}


def _result(job: dict[str, Any], seconds: float) -> dict[str, Any]:
    return {
        "total_records": 3,
        "processed_records": 3,
        "failed_records": 0,
        "progress_percentage": 100,
        "duration": round(seconds, 3),
        "errors": [],
    }


async def _store(conn: AsyncConnection, job: dict[str, Any]) -> DemoRows:
    rows = [
        {
            **record,
            "date_of_birth": dt.date.fromisoformat(record["date_of_birth"]),
            "last_job_id": job["id"],
            "created_at": job["completed_at"],
            "updated_at": job["completed_at"],
        }
        for record in job["input"]["records"]
    ]
    return DemoRows(counts={"students": await seed_db.insert_students(conn, rows)})


DEMO = Demo(
    inputs=_input,
    steps=[(34, "Processed 1/3 records"), (67, "Processed 2/3 records")],
    result=_result,
    failure=("job_error", "The enrichment service timed out."),
    done_message="Ingested 3 records: 3 stored, 0 rejected",
    store=_store,
)
