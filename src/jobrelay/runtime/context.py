"""What a job body sees: its input, its owner, and one reporter for progress."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from jobrelay.config import Settings
from jobrelay.db import jobs as jobs_db
from jobrelay.db.jobs import JobRow
from jobrelay.jobs import lifecycle
from jobrelay.runtime.errors import JobGone
from jobrelay.runtime.output import LiveOutput
from jobrelay.runtime.process import runtime_of
from jobrelay.runtime.writes import StepsOp
from jobrelay.services import Services
from jobrelay.tx import transaction

# Work committed together with a progress step; returns extra data for the step's event.
ProgressWrite = Callable[[AsyncConnection], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Owner:
    """The owner's account as the claim read it (the claim's statement returns it, so a body
    that checks the balance before working needs no read of its own)."""

    tokens: int
    subscription_expires_at: dt.datetime | None


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a step's failure as seen: the body learns of it at its next step, or never needs to."""
    if not future.cancelled():
        future.exception()


@dataclass
class RunContext:
    services: Services
    job: JobRow
    owner: Owner | None = None
    # The input as claimed: progress steps do not bring it back (it can be 1000 records).
    _input: dict[str, Any] = field(init=False, repr=False)
    # The job's open operation in the process's write buffer, and the step operations not yet
    # known to be stored.
    _op: StepsOp | None = field(default=None, init=False, repr=False)
    _sent: list[asyncio.Future[Any]] = field(default_factory=list, init=False, repr=False)
    _lost: BaseException | None = field(default=None, init=False, repr=False)
    _output: LiveOutput | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._input = self.job.input

    @property
    def job_id(self) -> uuid.UUID:
        return uuid.UUID(str(self.job.id))

    @property
    def attempt(self) -> int:
        return int(self.job.attempts)

    @property
    def input(self) -> dict[str, Any]:
        return self._input

    @property
    def _progress_webhook(self) -> bool:
        """A progress webhook carries the whole job, input included."""
        return bool(self.job.webhook) and "progress" in (self.job.webhook_events_filter or ())

    @property
    def user_id(self) -> int:
        return int(self.job.user_id)

    @property
    def settings(self) -> Settings:
        return self.services.settings

    async def progress(
        self,
        progress: int,
        message: str,
        *,
        data: dict[str, Any] | None = None,
        write: ProgressWrite | None = None,
    ) -> None:
        """Store, publish and stream a step; renews the lease. Raises JobGone if the job was
        canceled or another attempt took over, which stops the body.

        A step goes to the process's write buffer and is stored within a few milliseconds in one
        transaction with the other jobs' writes (and with this job's later steps, or its outcome,
        if they come first); the body does not wait for it. No step is dropped and the order
        holds; a step that could not be stored (the job is gone) raises at the next call.

        `write` runs first in the same transaction: the work a step announces (a batch of rows)
        commits with its event, and is rolled back if the job is no longer this attempt's. Such
        a step is stored at once, after the steps reported before it."""
        self._raise_if_lost()
        if write is None:
            writes = runtime_of(self.services).writes
            op = writes.step(self._op, self.job_id, self.attempt, (progress, message, data))
            if op is not self._op:
                self._op = op
                op.future.add_done_callback(_retrieve)
                self._sent.append(op.future)
            return
        await self.settle()
        async with transaction(self.services) as tx:
            extra = await write(tx.conn)
            row = await lifecycle.report_progress(
                tx,
                self.job_id,
                progress=progress,
                message=message,
                where=[jobs_db.is_attempt(self.attempt)],
                values={"lease_expires_at": jobs_db.seconds_from_now(self.settings.lease_seconds)},
                data={**(data or {}), **extra},
                without_input=not self._progress_webhook,
            )
            if row is None:
                raise JobGone()
        self.job = row

    async def output(self, text: str) -> None:
        """Append live output (see `jobrelay.runtime.output`); part of the result at the end."""
        self.live_output.append(text)

    async def restart_output(self) -> None:
        """Start the output over (a model call that is tried again); clients see offset 0."""
        await self.live_output.restart()

    @property
    def has_output(self) -> bool:
        return self._output is not None

    @property
    def live_output(self) -> LiveOutput:
        if self._output is None:
            self._output = LiveOutput(
                runtime_of(self.services).writes.redis,
                self.job_id,
                self.attempt,
                max_chars=self.settings.output_live_max_chars,
                ttl_seconds=self.settings.output_live_ttl_seconds,
            )
        return self._output

    async def close_output(self) -> str:
        """Publish the output still waiting; the attempt's full text ("" if none)."""
        return await self._output.close() if self._output is not None else ""

    async def end_output(self, *, starting_over: bool) -> None:
        """Drop the live copy of the output; with `starting_over`, tell clients so."""
        if self._output is not None:
            await self._output.end(starting_over=starting_over)

    @property
    def outstanding(self) -> list[asyncio.Future[Any]]:
        """The step operations sent and not yet known to be stored."""
        self._raise_if_lost()
        return list(self._sent)

    async def settle(self) -> None:
        """Wait until every step reported so far is stored; raises what storing ran into
        (`JobGone` when the job is no longer this attempt's)."""
        if self._sent:
            await asyncio.wait(list(self._sent))
        self._raise_if_lost()

    def discard(self) -> None:
        """The body is over: nothing it reported is waited for any more."""
        self._sent.clear()
        self._op = None

    def _raise_if_lost(self) -> None:
        if self._sent and self._sent[0].done():
            waiting = []
            for future in self._sent:
                if not future.done():
                    waiting.append(future)
                elif not future.cancelled() and future.exception() is not None:
                    self._lost = self._lost or future.exception()
                elif future.result() is not None:
                    self.job = future.result()
            self._sent = waiting
        if self._lost is not None:
            raise self._lost
