"""Helpers for following jobs from tests."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx

from jobrelay.db import jobs as jobs_db
from jobrelay.services import Services

TERMINAL = {"completed", "failed", "canceled"}


async def wait_for_status(
    client: httpx.AsyncClient, job_id: str, statuses: set[str] | str = TERMINAL, timeout: float = 30
) -> dict[str, Any]:
    wanted = {statuses} if isinstance(statuses, str) else statuses
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await client.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job = response.json()
        if job["status"] in wanted:
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job.get('status')} after {timeout}s: {job}")


async def submit(
    client: httpx.AsyncClient, kind: str, job_input: dict[str, Any], **body: Any
) -> dict[str, Any]:
    response = await client.post("/v1/jobs", json={"kind": kind, "input": job_input, **body})
    assert response.status_code == 202, response.text
    result: dict[str, Any] = response.json()
    return result


def prompt_input(text: str = "Explain photosynthesis to a ten year old") -> dict[str, Any]:
    return {"manual_prompt": text}


async def store_queued_job(services: Services, user_id: int, **values: Any) -> uuid.UUID:
    """A queued prompt job written straight to the database (no API, no queue); `values` set
    or override its columns."""
    job_id = uuid.uuid4()
    async with services.engine.begin() as conn:
        await jobs_db.insert_job(
            conn,
            {
                "id": job_id,
                "kind": "prompt.generate",
                "status": "queued",
                "progress": 0,
                "message": "Task queued, waiting to start...",
                "user_id": user_id,
                "input": {"manual_prompt": "tides"},
                "deadline_seconds": 900,
                "max_attempts": 3,
                **values,
            },
        )
    return job_id
