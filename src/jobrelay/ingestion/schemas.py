"""Input of `records.ingest` at submit time: the batch's size and shape.

Each record is validated on its own in the worker, so one bad record never rejects the batch.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_RECORDS = 1000


class IngestInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_RECORDS)
