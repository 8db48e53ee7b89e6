"""`jobrelay submit ingest` as a real process against the running stack: a CSV of 2500 rows goes
in three jobs, every row is accounted for, and `--errors` names the rejected rows and why."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path

from jobrelay.services import Services
from tests.conftest import MakeUser, Stack
from tests.ingestion.factories import new_prefix, student
from tests.ingestion.helpers import stored_students
from tests.support.processes import run_cli

COLUMNS = ["student_id", "first_name", "last_name", "email", "grade", "date_of_birth", "school_id"]


def write_csv(path: Path, prefix: str, rows: int) -> dict[int, str]:
    """`rows` students; returns the 1-based rows that must be rejected and the field at fault."""
    broken = {
        1: ("email", "not-an-email"),
        1000: ("grade", "13"),
        1001: ("date_of_birth", "2010-02-30"),
        1500: ("last_name", ""),
        2500: ("date_of_birth", "2999-12-31"),
    }
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in range(1, rows + 1):
            record = student(prefix, row)
            if row in broken:
                field, value = broken[row]
                record[field] = value
            if row == 2100:
                record["student_id"] = f"{prefix}-02050"  # a duplicate within the third job
            writer.writerow(record)
    return {**{row: field for row, (field, _) in broken.items()}, 2100: "student_id"}


async def test_a_csv_of_2500_rows_goes_in_three_jobs_with_every_row_accounted_for(
    stack: Stack, make_user: MakeUser, services: Services, tmp_path: Path
) -> None:
    user = await make_user()
    prefix = new_prefix()
    source = tmp_path / "students.csv"
    rejected = write_csv(source, prefix, 2500)
    errors_file = tmp_path / "rejected.csv"

    done = await asyncio.to_thread(
        run_cli,
        ["submit", "ingest", str(source), "--errors", str(errors_file), "--json"],
        stack.cli_env(user.key),
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)

    assert summary["total_records"] == 2500
    assert summary["processed_records"] == 2500 - len(rejected)
    assert summary["failed_records"] == len(rejected)
    assert [job["records"] for job in summary["jobs"]] == [1000, 1000, 500]
    assert [(job["first_row"], job["last_row"]) for job in summary["jobs"]] == [
        (1, 1000),
        (1001, 2000),
        (2001, 2500),
    ]
    assert all(job["status"] == "completed" for job in summary["jobs"])
    assert sum(job["processed_records"] + job["failed_records"] for job in summary["jobs"]) == 2500
    assert [error["row"] for error in summary["errors"]] == sorted(rejected)

    with errors_file.open(newline="", encoding="utf-8") as handle:
        written = list(csv.DictReader(handle))
    assert [int(line["row"]) for line in written] == sorted(rejected)
    for line in written:
        field = rejected[int(line["row"])]
        assert line["errors"].startswith(f"{field}:"), line
        assert int(line["line"]) == int(line["row"]) + 1  # the header is line 1

    listed = await user.client.get("/v1/jobs", params={"kind": "records.ingest"})
    assert {job["id"] for job in listed.json()["items"]} == {job["id"] for job in summary["jobs"]}
    assert len(await stored_students(services, prefix)) == 2500 - len(rejected)
