"""`JobContext`: what a kind's handler is given to report progress and reach the service.

It wraps the runtime's per-run context (`RunContext`), which owns the storage of steps, the
lease and the fence; a handler sees only this small surface, which stays stable while the
runtime underneath changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from jobrelay.jobs.states import JobStatus

if TYPE_CHECKING:
    import httpx
    from sqlalchemy.ext.asyncio import AsyncConnection

    from jobrelay.config import Settings
    from jobrelay.runtime.context import Owner, RunContext

__all__ = ["JobContext", "ProgressWrite"]

# Work committed in the transaction of a progress step, inside the job's fence; returns extra
# data for the step's event (an empty dict for none).
ProgressWrite = Callable[["AsyncConnection"], Awaitable[dict[str, Any]]]


class JobContext:
    """One attempt of one job, as its handler sees it.

    - `await ctx.progress(40, "Transcribing")` stores, publishes and streams a step (and fires
      progress webhooks); it raises if the job was canceled or taken over, which ends the
      handler. `write=` commits the handler's own rows in the step's transaction, only while
      the job is still this attempt's (a canceled job's batch is rolled back with its step).
    - `ctx.charge_tokens(n)` takes `n` tokens from the owner's balance when the job completes,
      in the completing transaction (a job that runs twice charges once).
    - `await ctx.canceled()` says whether the job was canceled (or taken over) meanwhile; a
      cancellation also cancels the handler's task, so `try/finally` is the place to clean up.
    - `ctx.connect()` opens a read connection (autocommit) for the handler's own queries.
    - `await ctx.output(text)` appends live output (see `output`).
    """

    def __init__(self, run: RunContext, *, kind: str, done_message: str = "Job completed") -> None:
        self._run = run
        self._kind = kind
        self._done_message = done_message
        self._charge = 0

    @property
    def job_id(self) -> uuid.UUID:
        return self._run.job_id

    @property
    def attempt(self) -> int:
        """1 for the first run of the job; counts on across retries and redeliveries."""
        return self._run.attempt

    @property
    def user_id(self) -> int:
        """The job's owner."""
        return self._run.user_id

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def input(self) -> dict[str, Any]:
        """The input as stored (JSON), before the kind's model parsed it."""
        return self._run.input

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self._run.job.metadata or {})

    @property
    def settings(self) -> Settings:
        return self._run.settings

    @property
    def owner(self) -> Owner | None:
        """The owner's token balance and subscription as the claim read them (None when the
        context was made without a claim); the completion's token charge is what counts."""
        return self._run.owner

    @property
    def http(self) -> httpx.AsyncClient:
        """The process's shared HTTP client (connection pooling, sane timeouts)."""
        return self._run.services.http

    async def progress(
        self,
        pct: int,
        message: str,
        *,
        data: dict[str, Any] | None = None,
        write: ProgressWrite | None = None,
    ) -> None:
        """Report a step: `pct` (0-100, never lower than before within an attempt), a message
        for people, and optional JSON `data` for the event. See the class docstring for
        `write`."""
        await self._run.progress(max(0, min(100, int(pct))), message, data=data, write=write)

    async def output(self, text: str) -> None:
        """Append `text` to the job's live output (an LLM's tokens as they come): streamed to
        clients as `output` events, coalesced to about 20 a second; a client that connects
        mid-run first gets the text so far. The full text is part of the result (as the field
        that holds it, else under `output`). Each attempt starts the output over."""
        await self._run.output(text)

    async def restart_output(self) -> None:
        """Start the output over within this attempt (say, a model call that is tried again):
        clients get an `output` event with offset 0."""
        await self._run.restart_output()

    @property
    def output_text(self) -> str:
        """The live output written so far in this attempt."""
        return self._run.live_output.text if self._run.has_output else ""

    def charge_tokens(self, amount: int) -> None:
        """Take `amount` tokens from the owner when the job completes (not if it fails); the
        job fails with `insufficient_tokens` if the balance no longer covers them then."""
        if amount < 0:
            raise ValueError("a token charge is not negative")
        self._charge = amount

    def set_completion_message(self, message: str) -> None:
        """The job's `message` once it completes (default: the kind's `done_message`)."""
        self._done_message = message

    async def canceled(self) -> bool:
        """True once the job was canceled, or another attempt took it over."""
        from jobrelay.db import jobs as jobs_db  # sqlalchemy, only once a job runs

        async with self._run.services.reads.connect() as conn:
            row = await jobs_db.get_job(conn, self.job_id)
        if row is None:
            return True
        return row.status == JobStatus.CANCELED.value or int(row.attempts) != self.attempt

    def connect(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection from the process's pool in autocommit mode, for reads of the handler's
        own (`async with ctx.connect() as conn: ...`). Writes that must happen only while the job
        is this attempt's go through `progress(..., write=...)`."""
        return self._run.services.reads.connect()

    @property
    def tokens_charged(self) -> int:
        return self._charge

    @property
    def completion_message(self) -> str:
        return self._done_message
