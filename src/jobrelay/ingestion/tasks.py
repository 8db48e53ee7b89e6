"""The `records.ingest` job body: per batch of 100, judge the records, await the enrichment
step, and write the valid ones together with the batch's progress event.

Each batch commits atomically with the event that reports it, and the writes are upserts that
leave unchanged rows alone, so a job that runs twice (ARQ delivers at least once) stores the
same students, changes nothing the second time, and returns the same result.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from jobrelay.db import students as students_db
from jobrelay.db.students import StudentRow, UpsertCounts
from jobrelay.ingestion.demo import DEMO
from jobrelay.ingestion.enrichment import Enricher, make_enricher
from jobrelay.ingestion.records import RecordChecker
from jobrelay.ingestion.schemas import IngestInput, IngestResult, RejectedRecord, StudentRecord
from jobrelay.kinds import JobContext, kind, runner_of

BATCH_SIZE = 100
START_MESSAGE = "Validating records..."


@dataclass
class Tally:
    """Counts so far, as each progress event and the result report them."""

    total: int
    handled: int = 0
    stored: int = 0
    written: UpsertCounts = field(default_factory=UpsertCounts)
    rejected: list[RejectedRecord] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.rejected)

    @property
    def percentage(self) -> int:
        return math.floor(self.handled * 100 / self.total) if self.total else 100

    def event_data(self, batch: int, batches: int) -> dict[str, Any]:
        return {
            "batch": batch,
            "batches": batches,
            "total_records": self.total,
            "handled_records": self.handled,
            "processed_records": self.stored,
            "failed_records": self.failed,
        }

    def add_written(self, counts: UpsertCounts) -> dict[str, Any]:
        """Count a batch's writes as it commits; the running totals, for its event."""
        self.written = self.written + counts
        return {
            "inserted_records": self.written.inserted,
            "updated_records": self.written.updated,
            "unchanged_records": self.written.unchanged,
        }


def _row(record: StudentRecord) -> StudentRow:
    return StudentRow(
        record.student_id,
        record.first_name,
        record.last_name,
        record.email,
        record.grade,
        record.date_of_birth,
        record.school_id,
    )


async def _prepare(
    checker: RecordChecker, enricher: Enricher, raw: list[dict[str, Any]], start: int, tally: Tally
) -> list[StudentRow]:
    """Judge one batch and enrich its valid records; the rows to write."""
    valid: list[StudentRecord] = []
    for outcome in checker.check_all(raw, start=start):
        if isinstance(outcome, StudentRecord):
            valid.append(outcome)
        else:
            tally.rejected.append(outcome)
    if valid:
        valid = list(await enricher.enrich(valid))
    tally.handled += len(raw)
    tally.stored += len(valid)
    return [_row(record) for record in valid]


async def _commit_batch(
    ctx: JobContext, tally: Tally, rows: list[StudentRow], number: int, batches: int
) -> None:
    """Write the batch and report it in one transaction."""

    async def write(conn: AsyncConnection) -> dict[str, Any]:
        counts = await students_db.upsert_students(conn, rows, job_id=ctx.job_id, defer_flush=True)
        return tally.add_written(counts)

    await ctx.progress(
        tally.percentage,
        f"Processed {tally.handled}/{tally.total} records",
        data=tally.event_data(number, batches),
        write=write,
    )


async def _ingest_batches(ctx: JobContext, records: list[dict[str, Any]], tally: Tally) -> None:
    checker = RecordChecker()
    enricher = make_enricher(ctx.settings)
    batches = math.ceil(len(records) / BATCH_SIZE)
    for number, start in enumerate(range(0, len(records), BATCH_SIZE), start=1):
        rows = await _prepare(checker, enricher, records[start : start + BATCH_SIZE], start, tally)
        await _commit_batch(ctx, tally, rows, number, batches)


@kind(
    "records.ingest",
    input=IngestInput,
    start_message=START_MESSAGE,
    schema_name="IngestJobCreate",
    demo=DEMO,
)
async def ingest(ctx: JobContext, data: IngestInput) -> IngestResult:
    """Bulk ingestion of student records: valid ones stored per batch, invalid ones reported."""
    started = time.perf_counter()
    tally = Tally(total=len(data.records))
    await _ingest_batches(ctx, data.records, tally)
    ctx.set_completion_message(
        f"Ingested {tally.total} records: {tally.stored} stored, {tally.failed} rejected"
    )
    return IngestResult(
        total_records=tally.total,
        processed_records=tally.stored,
        failed_records=tally.failed,
        progress_percentage=tally.percentage,
        duration=round(time.perf_counter() - started, 3),
        errors=tally.rejected,
    )


RUNNER = runner_of(ingest)
# The body as the runtime runs it (input parsed from the claimed row, result serialised).
ingest_records = RUNNER.handler
