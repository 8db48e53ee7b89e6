"""Reading what an ingestion job left behind: its events and the stored students."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import text

from jobrelay.services import Services


async def events_of(client: httpx.AsyncClient, job_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/jobs/{job_id}/events", headers={"Accept": "application/json"})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


@dataclass(frozen=True)
class StoredStudent:
    student_id: str
    first_name: str
    last_name: str
    email: str
    grade: int
    date_of_birth: dt.date
    school_id: str
    last_job_id: uuid.UUID | None
    updated_at: dt.datetime
    version: str  # xmin: changes whenever PostgreSQL writes a new row version


async def stored_students(services: Services, prefix: str) -> dict[str, StoredStudent]:
    """Every stored student whose id starts with `prefix`, by student_id."""
    async with services.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT student_id, first_name, last_name, email, grade, date_of_birth, "
                "school_id, last_job_id, updated_at, xmin::text AS version "
                "FROM students WHERE student_id LIKE :pattern"
            ),
            {"pattern": f"{prefix}%"},
        )
        return {row.student_id: StoredStudent(**row._asdict()) for row in rows}
