"""Input and result of `records.ingest`, and the rules one student record must meet.

At submit time only the batch's size and shape are checked (1 to 1000 objects): each record is
validated on its own in the worker, so one bad record never rejects the batch.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from jobrelay.ingestion.emails import EmailNotValidError, normalize_email

MAX_RECORDS = 1000
OLDEST_BIRTH_DATE = dt.date(1900, 1, 1)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_WHITESPACE = re.compile(r"\s")


class IngestInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_RECORDS)


def _no_spaces(value: str) -> str:
    if _WHITESPACE.search(value):
        raise PydanticCustomError("identifier_spaces", "must not contain spaces")
    return value


def _email(value: str) -> str:
    try:
        return normalize_email(value)
    except EmailNotValidError as exc:
        raise PydanticCustomError(
            "email_invalid", "value is not a valid email address: {reason}", {"reason": str(exc)}
        ) from None


def _whole_number(value: Any) -> Any:
    """`true` is not grade 1: JSON booleans are refused before int coercion sees them."""
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


def _birth_date(value: Any) -> dt.date:
    """A real calendar date written YYYY-MM-DD, not in the future and not before 1900."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        born = value
    elif isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            born = dt.date.fromisoformat(value)
        except ValueError as exc:
            raise PydanticCustomError(
                "date_invalid",
                "{value} is not a real date ({reason})",
                {"value": value, "reason": str(exc)},
            ) from None
    else:
        raise PydanticCustomError("date_format", "must be a date written YYYY-MM-DD")
    if born > dt.datetime.now(dt.UTC).date():
        raise PydanticCustomError("date_in_future", "must not be in the future")
    if born < OLDEST_BIRTH_DATE:
        raise PydanticCustomError(
            "date_too_old", "must not be before {oldest}", {"oldest": OLDEST_BIRTH_DATE.isoformat()}
        )
    return born


Identifier = Annotated[
    str,
    Field(min_length=1, max_length=64, coerce_numbers_to_str=True),
    AfterValidator(_no_spaces),
]
Name = Annotated[str, Field(min_length=1, max_length=100)]


class StudentRecord(BaseModel):
    """One student as stored: trimmed text, a normalized email, a real birth date."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    student_id: Identifier
    first_name: Name
    last_name: Name
    email: Annotated[str, Field(max_length=320), AfterValidator(_email)]
    grade: Annotated[int, BeforeValidator(_whole_number), Field(ge=1, le=12)]
    date_of_birth: Annotated[dt.date, BeforeValidator(_birth_date)]
    school_id: Identifier


class RecordProblem(BaseModel):
    """Why a record was rejected: the field at fault (or the key that should not be there)."""

    field: str
    reason: str
    type: str


class RejectedRecord(BaseModel):
    """A record that was not stored; `index` is its position in the job's `records`."""

    index: int
    student_id: str | None
    errors: list[RecordProblem]


class IngestResult(BaseModel):
    total_records: int
    processed_records: int
    failed_records: int
    progress_percentage: int
    duration: float
    errors: list[RejectedRecord]
