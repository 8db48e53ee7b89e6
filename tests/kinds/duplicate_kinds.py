"""A second declaration of `test.sleep`: loading it with sample_kinds must stop start-up."""

from __future__ import annotations

from pydantic import BaseModel

from jobrelay import JobContext, kind


class Other(BaseModel):
    seconds: float


@kind("test.sleep", input=Other)
async def another_sleep(ctx: JobContext, data: Other) -> None:
    return None
