"""Student records from a CSV or JSON Lines file, and the rejected rows written back out.

Rows keep their place in the file (`line`, `row`) so a rejection reported by a job, which
only knows an index within its own chunk, can be traced to the line a person would fix.
Values are sent as the file has them (a grade that parses becomes an int); judging them
is the server's work, so the report is the same whichever client submitted the rows.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobrelay.cli.client import InputError

__all__ = [
    "RECORD_FIELDS",
    "Rejection",
    "SourceRow",
    "chunked",
    "read_records",
    "write_rejections",
]

RECORD_FIELDS = (
    "student_id",
    "first_name",
    "last_name",
    "email",
    "grade",
    "date_of_birth",
    "school_id",
)


@dataclass(frozen=True)
class SourceRow:
    """One record and where it came from: `row` counts records from 1, `line` is the file line."""

    row: int
    line: int
    record: dict[str, Any]


@dataclass(frozen=True)
class Rejection:
    """A row that was not stored, and why."""

    source: SourceRow
    reasons: list[str]


def read_records(path: Path) -> tuple[list[SourceRow], list[str]]:
    """Read every record of a `.csv` or `.jsonl` file; also return the CSV columns it ignored."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            rows, ignored = _read_csv(path)
        elif suffix in (".jsonl", ".ndjson"):
            rows, ignored = _read_jsonl(path), []
        else:
            raise InputError(f"{path}: expected a .csv or .jsonl file")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from exc
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV ({exc})") from exc
    if not rows:
        raise InputError(f"{path}: no records")
    return rows, ignored


def _cell(field: str, value: str) -> Any:
    text = value.strip()
    if field == "grade":
        try:
            return int(text)
        except ValueError:
            return value
    return text


def _read_csv(path: Path) -> tuple[list[SourceRow], list[str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        columns = {name: name.strip().lower() for name in header}
        known = [name for name, field in columns.items() if field in RECORD_FIELDS]
        if header and not known:
            raise InputError(
                f"{path}: no known columns in the header (expected {', '.join(RECORD_FIELDS)})"
            )
        ignored = [name for name in header if name not in known]
        rows: list[SourceRow] = []
        last_line = reader.line_num
        for row_dict in reader:
            record = {
                columns[name]: _cell(columns[name], value)
                for name, value in row_dict.items()
                if name in known and value is not None and value.strip() != ""
            }
            rows.append(SourceRow(row=len(rows) + 1, line=last_line + 1, record=record))
            last_line = reader.line_num
    return rows, ignored


def _read_jsonl(path: Path) -> list[SourceRow]:
    rows: list[SourceRow] = []
    with path.open(encoding="utf-8-sig") as handle:
        for line_number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except ValueError as exc:
                raise InputError(f"{path}:{line_number}: invalid JSON ({exc})") from exc
            if not isinstance(record, dict):
                raise InputError(f"{path}:{line_number}: expected a JSON object per line")
            rows.append(SourceRow(row=len(rows) + 1, line=line_number, record=record))
    return rows


def chunked(rows: list[SourceRow], size: int) -> Iterator[list[SourceRow]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def write_rejections(path: Path, rejections: list[Rejection]) -> None:
    """Write rejected rows: CSV (the record's columns, then line and errors) or JSON Lines."""
    ordered = sorted(rejections, key=lambda rejection: rejection.source.row)
    try:
        if path.suffix.lower() == ".csv":
            _write_csv(path, ordered)
        else:
            _write_jsonl(path, ordered)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _write_csv(path: Path, rejections: list[Rejection]) -> None:
    extra = sorted({key for item in rejections for key in item.source.record} - set(RECORD_FIELDS))
    fields = ["row", "line", *RECORD_FIELDS, *extra, "errors"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for item in rejections:
            cells = {
                key: value if isinstance(value, str | int | float) else json.dumps(value)
                for key, value in item.source.record.items()
            }
            writer.writerow(
                {
                    **cells,
                    "row": item.source.row,
                    "line": item.source.line,
                    "errors": "; ".join(item.reasons),
                }
            )


def _write_jsonl(path: Path, rejections: list[Rejection]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for item in rejections:
            entry = {
                "row": item.source.row,
                "line": item.source.line,
                "student_id": item.source.record.get("student_id"),
                "errors": item.reasons,
                "record": item.source.record,
            }
            handle.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
