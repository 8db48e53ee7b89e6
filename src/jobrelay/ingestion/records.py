"""Judging a job's records one by one: each is either a `StudentRecord` to store or a rejection.

A `student_id` that appears more than once is stored from its first valid record; the later
ones are rejected as duplicates, so one job never writes the same student twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from jobrelay.ingestion.schemas import RecordProblem, RejectedRecord, StudentRecord

Outcome = StudentRecord | RejectedRecord


def _student_id_of(raw: Any) -> str | None:
    value = raw.get("student_id") if isinstance(raw, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value).strip() or None


def _problems(exc: ValidationError) -> list[RecordProblem]:
    return [
        RecordProblem(
            field=".".join(str(part) for part in error["loc"]) or "record",
            reason=error["msg"],
            type=error["type"],
        )
        for error in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def _duplicate(index: int, student_id: str, earlier: int) -> RejectedRecord:
    problem = RecordProblem(
        field="student_id",
        reason=f"duplicates the student_id of the record at index {earlier}",
        type="duplicate_student_id",
    )
    return RejectedRecord(index=index, student_id=student_id, errors=[problem])


class RecordChecker:
    """Judges one job's records in order, batch by batch, remembering accepted student_ids."""

    def __init__(self) -> None:
        self._first_seen: dict[str, int] = {}

    def check(self, index: int, raw: Any) -> Outcome:
        try:
            record = StudentRecord.model_validate(raw)
        except ValidationError as exc:
            return RejectedRecord(
                index=index, student_id=_student_id_of(raw), errors=_problems(exc)
            )
        earlier = self._first_seen.setdefault(record.student_id, index)
        return record if earlier == index else _duplicate(index, record.student_id, earlier)

    def check_all(self, raw_records: Sequence[Any], *, start: int = 0) -> list[Outcome]:
        """Outcomes of consecutive records, the first of which is record number `start`."""
        return [self.check(start + offset, raw) for offset, raw in enumerate(raw_records)]


def check_records(raw_records: Sequence[Any]) -> list[Outcome]:
    return RecordChecker().check_all(raw_records)
