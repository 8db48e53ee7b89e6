"""Judging a job's records one by one: each is either a `StudentRecord` to store or a rejection.

A `student_id` that appears more than once is stored from its first valid record; the later
ones are rejected as duplicates, so one job never writes the same student twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from jobrelay.ingestion.schemas import RecordProblem, RejectedRecord, StudentRecord

Outcome = StudentRecord | RejectedRecord


@dataclass(frozen=True)
class CheckedRecords:
    """Every record's outcome, in input order."""

    outcomes: list[Outcome]

    @property
    def rejected(self) -> list[RejectedRecord]:
        return [item for item in self.outcomes if isinstance(item, RejectedRecord)]


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


def check_record(index: int, raw: Any) -> Outcome:
    try:
        return StudentRecord.model_validate(raw)
    except ValidationError as exc:
        return RejectedRecord(index=index, student_id=_student_id_of(raw), errors=_problems(exc))


def check_records(raw_records: Sequence[Any]) -> CheckedRecords:
    outcomes: list[Outcome] = []
    first_seen: dict[str, int] = {}
    for index, raw in enumerate(raw_records):
        outcome = check_record(index, raw)
        if isinstance(outcome, StudentRecord):
            earlier = first_seen.setdefault(outcome.student_id, index)
            if earlier != index:
                outcome = RejectedRecord(
                    index=index,
                    student_id=outcome.student_id,
                    errors=[
                        RecordProblem(
                            field="student_id",
                            reason=f"duplicates the student_id of the record at index {earlier}",
                            type="duplicate_student_id",
                        )
                    ],
                )
        outcomes.append(outcome)
    return CheckedRecords(outcomes)
