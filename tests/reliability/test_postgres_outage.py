"""PostgreSQL restarted (a fast shutdown that cuts every connection, then a start on the same
port) while ingests, prompts and quizzes run.

During the outage the API answers `503` with the error shape, quickly; no process is restarted;
afterwards every accepted job completes, and an ingest's stored students always match the
batches its events report: a batch is written with its progress event or not at all.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from tests.ingestion.factories import new_prefix, students
from tests.quizzes.helpers import QUIZ
from tests.reliability.clients import Probe, admin_and_user, assert_error
from tests.reliability.conftest import MakeStack, record_figures
from tests.reliability.invariants import check_jobs, fetch
from tests.reliability.jobs import QUIZ_SIZE, wait_all_terminal
from tests.reliability.servers import PrivatePostgres
from tests.support.jobs import prompt_input, submit

RECORDS = 1000
BOUND_SECONDS = 10.0

_BATCHES_VS_STUDENTS = """
SELECT (SELECT count(*) FROM students WHERE student_id LIKE $2 || '-%') AS stored,
       (SELECT coalesce(max((data->>'processed_records')::int), 0) FROM job_events
         WHERE job_id = $1 AND data ? 'processed_records') AS reported
"""


async def _batches_consistent(database_url: str, job_id: str, prefix: str) -> tuple[int, int]:
    """(students stored, students the job's events say were stored), read in one snapshot."""
    rows = await fetch(database_url, _BATCHES_VS_STUDENTS, uuid.UUID(job_id), prefix)
    return int(rows[0]["stored"]), int(rows[0]["reported"])


@pytest.mark.timeout(240)
async def test_postgres_restart_recovers_without_restarts(
    private_postgres: PrivatePostgres, make_stack: MakeStack
) -> None:
    stack = await make_stack(
        workers=2,
        generator=True,
        postgres=private_postgres,
        ingest_delay_per_100="0.4",
        prompt_step_delay="0.5",
        generator_delay="2",
        max_attempts="5",
    )
    database_url = stack.env["JOBRELAY_DATABASE_URL"]
    pids = [p.pid for p in (*stack.workers, stack.api)]
    async with admin_and_user(stack) as (admin, user):
        ingests: list[tuple[str, str]] = []
        for _ in range(3):
            prefix = new_prefix()
            job = await submit(admin, "records.ingest", {"records": students(prefix, RECORDS)})
            ingests.append((job["id"], prefix))
        accepted = [job_id for job_id, _ in ingests]
        accepted += [
            (await submit(admin, "prompt.generate", prompt_input(f"p{i}")))["id"] for i in range(4)
        ]
        accepted += [
            (await submit(user, "quiz.generate", {**QUIZ, "quiz_size": QUIZ_SIZE}))["id"]
            for _ in range(2)
        ]
        while True:
            progress = (await admin.get(f"/v1/jobs/{ingests[0][0]}")).json()["progress"]
            if progress >= 20:
                break
            await asyncio.sleep(0.1)

        probe = Probe(admin, accepted[0])
        probe.start()
        await asyncio.to_thread(private_postgres.stop)
        down_at = time.monotonic()
        timings = []
        for client, request in (
            (admin, ("POST", "/v1/jobs", {"kind": "prompt.generate", "input": prompt_input()})),
            (user, ("POST", "/v1/jobs", {"kind": "prompt.generate", "input": prompt_input()})),
            (admin, ("GET", f"/v1/jobs/{accepted[0]}", None)),
            (user, ("GET", "/v1/jobs", None)),
        ):
            method, path, body = request
            started = time.monotonic()
            response = await client.request(method, path, json=body)
            timings.append(time.monotonic() - started)
            assert_error(response, 503, "database_unavailable")
            assert response.headers.get("retry-after")
        assert max(timings) < BOUND_SECONDS, timings
        ready = await admin.get("/readyz")
        body = assert_error(ready, 503, "not_ready")
        assert [d["component"] for d in body["error"]["details"]] == ["postgres"]
        await asyncio.sleep(max(0.0, 5 - (time.monotonic() - down_at)))

        await asyncio.to_thread(private_postgres.start)
        up_at = time.monotonic()
        outage_seconds = up_at - down_at
        for job_id, prefix in ingests:
            stored, reported = await _batches_consistent(database_url, job_id, prefix)
            assert stored == reported, (job_id, stored, reported)
            assert stored % 100 == 0, stored
        first_ok_after = None
        for _ in range(200):
            response = await user.post(
                "/v1/jobs", json={"kind": "prompt.generate", "input": prompt_input("after")}
            )
            if response.status_code == 202:
                first_ok_after = time.monotonic() - up_at
                accepted.append(response.json()["id"])
                break
            assert_error(response, 503)
            await asyncio.sleep(0.1)
        assert first_ok_after is not None, "the API never recovered"
        await probe.stop()
        accepted += probe.job_ids
        outcome = await wait_all_terminal(admin, accepted, timeout=150)
        all_done_after = time.monotonic() - up_at
    assert not outcome.unfinished, outcome.unfinished
    probe.assert_only_successes_and_503()
    assert "unexpected error" not in stack.api.log()
    assert [p.pid for p in (*stack.workers, stack.api)] == pids
    assert all(p.alive() for p in (*stack.workers, stack.api))
    for job_id, prefix in ingests:
        assert await _batches_consistent(database_url, job_id, prefix) == (RECORDS, RECORDS)
    report = await check_jobs(database_url, accepted)
    report.assert_clean()
    assert report.by_status == {"completed": len(accepted)}, report.by_status
    record_figures(
        "d_postgres_restart",
        {
            "jobs_accepted": len(accepted),
            "lost_jobs": 0,
            "duplicates": 0,
            "half_written_batches": 0,
            "outage_seconds": round(outage_seconds, 1),
            "max_503_seconds": round(max(timings), 3),
            "seconds_to_first_202_after_restart": round(first_ok_after, 2),
            "seconds_to_all_completed_after_restart": round(all_done_after, 1),
            "processes_restarted": 0,
            "probe_answers": len(probe.answers),
            "probe_503s": sum(1 for _, status, _ in probe.answers if status == 503),
            "probe_slowest_seconds": round(probe.slowest, 3),
            "jobs_rerun": sum(1 for n in report.attempts.values() if n > 1),
        },
    )
