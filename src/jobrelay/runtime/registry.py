"""Job kinds the worker can run, and how each one starts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobrelay.runtime.context import RunContext


@dataclass(frozen=True)
class Outcome:
    """What a job body hands back.

    `result` completes the job; `charge_tokens` are taken from the owner's balance in the
    completing transaction, so a job that runs twice charges once (a balance that no longer covers
    them fails the job with `insufficient_tokens` instead); `detach` leaves the job processing for
    an external callback.
    """

    result: dict[str, Any] | None = None
    message: str = "Job completed"
    charge_tokens: int = 0
    detach: bool = False
    detach_values: dict[str, Any] | None = None


Handler = Callable[["RunContext"], Awaitable[Outcome]]


@dataclass(frozen=True)
class KindRunner:
    handler: Handler
    start_progress: int = 0
    start_message: str = "Job started"
