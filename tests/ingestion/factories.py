"""Student records for ingestion tests: valid by default, with a prefix that keeps every test's
student_ids apart (the tests share one database)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

Record = dict[str, Any]
_DROP = object()


def new_prefix() -> str:
    return f"T{uuid.uuid4().hex[:10]}"


def student(prefix: str, number: int, **overrides: Any) -> Record:
    record: Record = {
        "student_id": f"{prefix}-{number:05d}",
        "first_name": f"First{number}",
        "last_name": f"Last{number}",
        "email": f"student{number}.{prefix.lower()}@school.example.com",
        "grade": 1 + number % 12,
        "date_of_birth": (dt.date(2008, 1, 1) + dt.timedelta(days=number % 3000)).isoformat(),
        "school_id": f"SCH-{number % 7}",
    }
    record.update(overrides)
    return {key: value for key, value in record.items() if value is not _DROP}


def without(field: str) -> dict[str, Any]:
    """An override that removes `field` from the record."""
    return {field: _DROP}


def students(prefix: str, count: int) -> list[Record]:
    return [student(prefix, number) for number in range(count)]


# Ways to break a record, each with the field the rejection must name.
Breaker = Callable[[str, int], tuple[Record, str]]

BREAKERS: list[Breaker] = [
    lambda prefix, n: (student(prefix, n, email="not-an-email"), "email"),
    lambda prefix, n: (student(prefix, n, grade=13), "grade"),
    lambda prefix, n: (student(prefix, n, grade=0), "grade"),
    lambda prefix, n: (student(prefix, n, date_of_birth="2010-02-30"), "date_of_birth"),
    lambda prefix, n: (student(prefix, n, date_of_birth="2999-01-01"), "date_of_birth"),
    lambda prefix, n: (student(prefix, n, **without("last_name")), "last_name"),
    lambda prefix, n: (student(prefix, n, first_name="   "), "first_name"),
    lambda prefix, n: (student(prefix, n, school_id=""), "school_id"),
]


def with_invalid(
    prefix: str, count: int, bad_indices: list[int]
) -> tuple[list[Record], dict[int, str]]:
    """`count` records where those at `bad_indices` are broken; returns them and index → field."""
    records = students(prefix, count)
    expected: dict[int, str] = {}
    for position, index in enumerate(bad_indices):
        record, field = BREAKERS[position % len(BREAKERS)](prefix, index)
        records[index] = record
        expected[index] = field
    return records, expected
