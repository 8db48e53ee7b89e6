"""The `records.ingest` job body: judge every record, then per batch of 100 await the enrichment
step and write the batch's valid records together with its progress event.

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
from jobrelay.ingestion.enrichment import make_enricher
from jobrelay.ingestion.records import CheckedRecords, check_records
from jobrelay.ingestion.schemas import IngestInput, IngestResult, StudentRecord
from jobrelay.runtime.context import JobContext
from jobrelay.runtime.registry import KindRunner, Outcome

BATCH_SIZE = 100
START_MESSAGE = "Validating records..."


@dataclass
class Tally:
    """Counts so far, as each progress event and the result report them."""

    total: int
    handled: int = 0
    stored: int = 0
    failed: int = 0
    written: UpsertCounts = field(default_factory=UpsertCounts)

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
        """Count a committed batch's writes; the running totals, for its event."""
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


async def _ingest_batches(ctx: JobContext, checked: CheckedRecords, tally: Tally) -> None:
    enricher = make_enricher(ctx.settings)
    outcomes = checked.outcomes
    batches = math.ceil(len(outcomes) / BATCH_SIZE)
    for number, start in enumerate(range(0, len(outcomes), BATCH_SIZE), start=1):
        batch = outcomes[start : start + BATCH_SIZE]
        valid = [item for item in batch if isinstance(item, StudentRecord)]
        if valid:
            valid = list(await enricher.enrich(valid))
        rows = [_row(record) for record in valid]

        async def write(conn: AsyncConnection, rows: list[StudentRow] = rows) -> dict[str, Any]:
            await students_db.defer_commit_flush(conn)
            counts = await students_db.upsert_students(conn, rows, job_id=ctx.job_id)
            return tally.add_written(counts)

        tally.handled += len(batch)
        tally.stored += len(rows)
        tally.failed += len(batch) - len(rows)
        await ctx.progress(
            tally.percentage,
            f"Processed {tally.handled}/{tally.total} records",
            data=tally.event_data(number, batches),
            write=write,
        )


async def ingest_records(ctx: JobContext) -> Outcome:
    started = time.perf_counter()
    body = IngestInput.model_validate(ctx.input)
    checked = check_records(body.records)
    tally = Tally(total=len(checked.outcomes))
    await _ingest_batches(ctx, checked, tally)
    result = IngestResult(
        total_records=tally.total,
        processed_records=tally.stored,
        failed_records=tally.failed,
        progress_percentage=tally.percentage,
        duration=round(time.perf_counter() - started, 3),
        errors=checked.rejected,
    )
    return Outcome(
        result=result.model_dump(mode="json"),
        message=f"Ingested {tally.total} records: {tally.stored} stored, {tally.failed} rejected",
    )


RUNNER = KindRunner(handler=ingest_records, start_progress=0, start_message=START_MESSAGE)
