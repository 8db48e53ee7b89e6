"""Job kinds the tests load through JOBRELAY_KINDS (module discovery)."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, ConfigDict, Field

from jobrelay import JobContext, JobFailed, kind
from jobrelay.kinds.delegated import delegated


class SleepInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(ge=0, le=30)
    label: str = ""


@kind("test.sleep", input=SleepInput, queue="slow", deadline_seconds=120)
async def sleep(ctx: JobContext, data: SleepInput) -> dict[str, object]:
    """Sleeps on the slow queue."""
    await ctx.progress(10, "Sleeping")
    await asyncio.sleep(data.seconds)
    return {
        "slept": data.seconds,
        "label": data.label,
        "job_id": str(ctx.job_id),
        "attempt": ctx.attempt,
        "user_id": ctx.user_id,
        "kind": ctx.kind,
        "canceled": await ctx.canceled(),
    }


class CountInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: int = Field(ge=1, le=50)
    fail_at: int | None = None
    charge: int = Field(default=0, ge=0)


@kind("test.count", input=CountInput, start_message="Counting...", done_message="Counted")
async def count(ctx: JobContext, data: CountInput) -> list[int]:
    """Counts on the default queue, one progress step per number; the result is a list."""
    numbers = []
    for number in range(1, data.to + 1):
        if number == data.fail_at:
            raise JobFailed("unlucky_number", f"Stopped at {number}.")
        numbers.append(number)
        await ctx.progress(number * 100 // data.to, f"Counted {number}", data={"n": number})
    ctx.charge_tokens(data.charge)
    return numbers


class EchoInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=200)
    times: int = Field(default=1, ge=1, le=5)


class EchoResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    worker_task_id: str | None = None
    user_id: int | None = None
    echo: str
    length: int


ECHO = delegated(
    "test.echo",
    input=EchoInput,
    url_setting="echo_worker_url",
    secret_setting="echo_worker_secret",
    result=EchoResult,
    deadline_seconds=300,
)
