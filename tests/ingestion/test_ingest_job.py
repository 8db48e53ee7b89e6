"""`records.ingest` end to end on the running stack (API and worker as real processes, the
enrichment step at 0.02 s per batch): exact counts and rejections, per-batch progress,
re-ingestion that changes nothing, the submit-time limit, and ten jobs at once."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

from jobrelay.services import Services
from tests.conftest import MakeUser
from tests.ingestion.factories import new_prefix, student, students, with_invalid
from tests.ingestion.helpers import events_of, stored_students
from tests.support.jobs import submit, wait_for_status

RESULT_FIELDS = {
    "total_records",
    "processed_records",
    "failed_records",
    "progress_percentage",
    "duration",
    "errors",
}


async def ingest(client: Any, records: list[dict[str, Any]], timeout: float = 60) -> dict[str, Any]:
    job = await submit(client, "records.ingest", {"records": records})
    done = await wait_for_status(client, job["id"], timeout=timeout)
    assert done["status"] == "completed", done
    return done


async def test_a_thousand_records_with_known_invalid_ones(
    make_user: MakeUser, services: Services
) -> None:
    user = await make_user()
    prefix = new_prefix()
    bad = [0, 7, 99, 100, 101, 250, 499, 500, 777, 998, 999]
    records, expected_fields = with_invalid(prefix, 1000, bad)
    records[300] = student(prefix, 12, first_name="Twin")  # same student_id as record 12
    job = await ingest(user.client, records)

    result = job["result"]
    assert set(result) == RESULT_FIELDS
    assert result["total_records"] == 1000
    assert result["failed_records"] == len(bad) + 1
    assert result["processed_records"] == 1000 - len(bad) - 1
    assert result["progress_percentage"] == 100
    assert isinstance(result["duration"], float) and result["duration"] > 0
    assert [error["index"] for error in result["errors"]] == sorted([*bad, 300])
    for error in result["errors"]:
        fields = [problem["field"] for problem in error["errors"]]
        if error["index"] == 300:
            assert error["student_id"] == f"{prefix}-00012"
            assert fields == ["student_id"]
            assert "index 12" in error["errors"][0]["reason"]
        else:
            assert error["student_id"] == f"{prefix}-{error['index']:05d}"
            assert fields == [expected_fields[error["index"]]]
        assert all(problem["reason"] and problem["type"] for problem in error["errors"])

    fetched = await user.client.get(f"/v1/jobs/{job['id']}/result")
    assert fetched.status_code == 200
    assert fetched.json() == result

    stored = await stored_students(services, prefix)
    assert len(stored) == 1000 - len(bad) - 1
    expected_ids = {f"{prefix}-{n:05d}" for n in range(1000) if n not in bad and n != 300}
    assert set(stored) == expected_ids
    twelve = stored[f"{prefix}-00012"]
    assert twelve.first_name == "First12"  # the first record of a student_id wins
    assert twelve.email == f"student12.{prefix.lower()}@school.example.com"
    assert twelve.date_of_birth == dt.date.fromisoformat(str(records[12]["date_of_birth"]))
    assert twelve.last_job_id == uuid.UUID(job["id"])

    progress = [
        event for event in await events_of(user.client, job["id"]) if event["type"] == "progress"
    ]
    assert [event["progress"] for event in progress] == list(range(10, 101, 10))


async def test_progress_is_reported_per_batch_in_order(make_user: MakeUser) -> None:
    user = await make_user()
    records, _ = with_invalid(new_prefix(), 250, [5, 150, 151, 249])
    job = await ingest(user.client, records)
    events = await events_of(user.client, job["id"])

    assert [event["id"] for event in events] == sorted(event["id"] for event in events)
    assert [(event["type"], event["status"]) for event in events] == [
        ("status", "queued"),
        ("status", "processing"),
        ("progress", "processing"),
        ("progress", "processing"),
        ("progress", "processing"),
        ("status", "completed"),
    ]
    progress = events[2:5]
    assert [event["message"] for event in progress] == [
        "Processed 100/250 records",
        "Processed 200/250 records",
        "Processed 250/250 records",
    ]
    assert [event["progress"] for event in progress] == [40, 80, 100]
    counts = [
        (
            e["data"]["batch"],
            e["data"]["handled_records"],
            e["data"]["processed_records"],
            e["data"]["failed_records"],
        )
        for e in progress
    ]
    assert counts == [(1, 100, 99, 1), (2, 200, 197, 3), (3, 250, 246, 4)]
    assert all(
        event["data"]["batches"] == 3 and event["data"]["total_records"] == 250
        for event in progress
    )
    assert events[-1]["progress"] == 100
    assert events[-1]["message"] == "Ingested 250 records: 246 stored, 4 rejected"


async def test_reingesting_the_same_records_changes_nothing(
    make_user: MakeUser, services: Services
) -> None:
    user = await make_user()
    prefix = new_prefix()
    records, _ = with_invalid(prefix, 300, [10, 20])
    first = await ingest(user.client, records)
    before = await stored_students(services, prefix)
    assert len(before) == 298

    again = await ingest(user.client, records)
    assert again["id"] != first["id"]
    assert {k: v for k, v in again["result"].items() if k != "duration"} == {
        k: v for k, v in first["result"].items() if k != "duration"
    }
    assert await stored_students(services, prefix) == before  # same rows, versions, timestamps
    last_progress = [
        e for e in await events_of(user.client, again["id"]) if e["type"] == "progress"
    ][-1]
    assert last_progress["data"]["inserted_records"] == 0
    assert last_progress["data"]["updated_records"] == 0
    assert last_progress["data"]["unchanged_records"] == 298

    changed = list(records)
    changed[5] = student(prefix, 5, email="new.address@school.example.com")
    third = await ingest(user.client, changed)
    after = await stored_students(services, prefix)
    moved = {sid for sid in after if after[sid] != before[sid]}
    assert moved == {f"{prefix}-00005"}
    row = after[f"{prefix}-00005"]
    assert row.email == "new.address@school.example.com"
    assert row.last_job_id == uuid.UUID(third["id"])
    assert row.updated_at > before[f"{prefix}-00005"].updated_at
    assert row.version != before[f"{prefix}-00005"].version


async def test_more_than_a_thousand_records_is_refused_before_anything_is_queued(
    make_user: MakeUser, services: Services
) -> None:
    user = await make_user()
    prefix = new_prefix()
    response = await user.client.post(
        "/v1/jobs", json={"kind": "records.ingest", "input": {"records": students(prefix, 1001)}}
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert any(detail["loc"][-1] == "records" for detail in error["details"])

    empty = await user.client.post(
        "/v1/jobs", json={"kind": "records.ingest", "input": {"records": []}}
    )
    assert empty.status_code == 422

    listed = await user.client.get("/v1/jobs")
    assert listed.status_code == 200
    assert listed.json()["items"] == []
    assert await stored_students(services, prefix) == {}


async def test_exactly_a_thousand_records_fit_the_body_limit(make_user: MakeUser) -> None:
    user = await make_user()
    long_names = [
        student(new_prefix(), n, first_name="N" * 100, last_name="L" * 100) for n in range(1000)
    ]
    job = await ingest(user.client, long_names)
    assert job["result"]["processed_records"] == 1000


async def test_ten_ingestion_jobs_at_once_all_complete_with_correct_counts(
    make_user: MakeUser, services: Services
) -> None:
    users = await asyncio.gather(*(make_user() for _ in range(10)))
    prefixes = [new_prefix() for _ in users]
    batches = [
        with_invalid(prefix, 1000, list(range(0, 1000, 100))[:n])
        for n, prefix in enumerate(prefixes)
    ]
    jobs = await asyncio.gather(
        *(
            submit(user.client, "records.ingest", {"records": records})
            for user, (records, _) in zip(users, batches, strict=True)
        )
    )
    done = await asyncio.gather(
        *(
            wait_for_status(user.client, job["id"], timeout=90)
            for user, job in zip(users, jobs, strict=True)
        )
    )
    for n, (job, prefix) in enumerate(zip(done, prefixes, strict=True)):
        assert job["status"] == "completed", job
        assert job["result"]["failed_records"] == n
        assert job["result"]["processed_records"] == 1000 - n
        assert [error["index"] for error in job["result"]["errors"]] == list(range(0, 100 * n, 100))
        assert len(await stored_students(services, prefix)) == 1000 - n
    started = max(dt.datetime.fromisoformat(job["started_at"]) for job in done)
    first_done = min(dt.datetime.fromisoformat(job["completed_at"]) for job in done)
    assert started < first_done, "the ten jobs ran one after another, not at once"
