"""What a job body sees: its input, its owner, and one reporter for progress."""

from __future__ import annotations

import asyncio
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
from jobrelay.services import Services
from jobrelay.tx import Tx, transaction

# Work committed together with a progress step; returns extra data for the step's event.
ProgressWrite = Callable[[AsyncConnection], Awaitable[dict[str, Any]]]

# How long a reported step waits for the next one (or the outcome) to share its transaction.
COALESCE_SECONDS = 0.05


@dataclass(frozen=True)
class _Step:
    progress: int
    message: str
    data: dict[str, Any] | None


@dataclass
class RunContext:
    services: Services
    job: JobRow
    # The input as claimed: progress steps do not bring it back (it can be 1000 records).
    _input: dict[str, Any] = field(init=False, repr=False)
    # Steps reported and not yet stored, and the task that stores them after COALESCE_SECONDS.
    _pending: list[_Step] = field(default_factory=list, init=False, repr=False)
    _flusher: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _storing: bool = field(default=False, init=False, repr=False)
    _lost: Exception | None = field(default=None, init=False, repr=False)
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

        A step is stored COALESCE_SECONDS after it is reported, in one transaction with the
        steps reported meanwhile, or with the job's outcome if that comes first: a body that
        reports several steps with no work in between pays for one write, not one per step.
        No step is dropped, the order holds, and a step reaches the stream at most that late.

        `write` runs first in the same transaction: the work a step announces (a batch of rows)
        commits with its event, and is rolled back if the job is no longer this attempt's. Such
        a step is stored at once (with any step still waiting before it)."""
        self._raise_if_lost()
        self._pending.append(_Step(progress, message, data))
        if write is None:
            if self._flusher is None:
                self._flusher = asyncio.create_task(self._store_later())
            return
        await self.settle()
        async with transaction(self.services) as tx:
            last = self._pending[-1]
            extra = await write(tx.conn)
            self._pending[-1] = _Step(last.progress, last.message, {**(last.data or {}), **extra})
            row = await self.store_pending(tx)
        if row is not None:
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
                self.services.redis,
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
    def has_pending(self) -> bool:
        return bool(self._pending)

    async def store_pending(self, tx: Tx) -> JobRow | None:
        """Store the waiting steps, in order, in the caller's transaction (call `settle` first);
        the job's row after the last one. Raises JobGone if the job is no longer this attempt's."""
        steps, self._pending = self._pending, []
        row = None
        for step in steps:
            row = await lifecycle.report_progress(
                tx,
                self.job_id,
                progress=step.progress,
                message=step.message,
                where=[jobs_db.is_attempt(self.attempt)],
                values={"lease_expires_at": jobs_db.seconds_from_now(self.settings.lease_seconds)},
                data=step.data,
                without_input=not self._progress_webhook,
            )
            if row is None:
                raise JobGone()
        return row

    async def settle(self) -> None:
        """Call off the timed store of waiting steps, or wait for it if it has begun; the steps
        still waiting are then the caller's to store. Raises what a timed store ran into."""
        task = self._flusher
        if task is not None:
            if not self._storing:
                task.cancel()
            await asyncio.wait({task})
            self._flusher = None
        self._raise_if_lost()

    def discard(self) -> None:
        """The body is over without an outcome to store (canceled or taken over)."""
        if self._flusher is not None and not self._storing:
            self._flusher.cancel()
        self._pending.clear()

    async def _store_later(self) -> None:
        await asyncio.sleep(COALESCE_SECONDS)
        self._storing = True
        try:
            async with transaction(self.services) as tx:
                row = await self.store_pending(tx)
            if row is not None:
                self.job = row
        except Exception as exc:  # JobGone or a database error: the body's next step raises it
            self._lost = exc
        finally:
            self._storing = False
            self._flusher = None

    def _raise_if_lost(self) -> None:
        if self._lost is not None:
            raise self._lost
