"""The bodies an external worker posts back, whatever the kind: progress, failure, and the
envelope fields every callback may carry. A result's own shape is the delegated kind's
(`delegated(..., result=Model)`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = ["CallbackBase", "CallbackEnvelope", "FailureCallback", "ProgressCallback", "TaskId"]

TaskId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class CallbackBase(BaseModel):
    """Fields every callback may carry; `/api/ai/receive/` needs `worker_task_id`."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    worker_task_id: TaskId | None = None
    user_id: int | None = Field(default=None, strict=True, ge=1)


class CallbackEnvelope(CallbackBase):
    """The envelope fields of any callback, its other fields left aside."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class ProgressCallback(CallbackBase):
    status: Literal["processing"]
    progress: int = Field(strict=True, ge=0, le=100)
    message: str = Field(default="", max_length=500)


class FailureCallback(CallbackBase):
    status: Literal["failed"]
    error: str = Field(min_length=1, max_length=2000)
