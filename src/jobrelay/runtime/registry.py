"""Job kinds the worker can run, and how each one starts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobrelay.runtime.context import JobContext

from sqlalchemy.ext.asyncio import AsyncConnection

OnComplete = Callable[[AsyncConnection], Awaitable[None]]


@dataclass(frozen=True)
class Outcome:
    """What a job body hands back.

    `result` completes the job; `on_complete` runs in the completing transaction (a token charge
    that must happen exactly once); `detach` leaves the job processing for an external callback.
    """

    result: dict[str, Any] | None = None
    message: str = "Job completed"
    on_complete: OnComplete | None = None
    detach: bool = False
    detach_values: dict[str, Any] | None = None


Handler = Callable[["JobContext"], Awaitable[Outcome]]


@dataclass(frozen=True)
class KindRunner:
    handler: Handler
    start_progress: int = 0
    start_message: str = "Job started"
