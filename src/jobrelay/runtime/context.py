"""What a job body sees: its input, its owner, and one reporter for progress."""

from __future__ import annotations

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
from jobrelay.services import Services
from jobrelay.tx import transaction

# Work committed together with a progress step; returns extra data for the step's event.
ProgressWrite = Callable[[AsyncConnection], Awaitable[dict[str, Any]]]


@dataclass
class JobContext:
    services: Services
    job: JobRow
    # The input as claimed: progress steps do not bring it back (it can be 1000 records).
    _input: dict[str, Any] = field(init=False, repr=False)

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

        `write` runs first in the same transaction: the work a step announces (a batch of rows)
        commits with its event, and is rolled back if the job is no longer this attempt's."""
        async with transaction(self.services) as tx:
            if write is not None:
                data = {**(data or {}), **await write(tx.conn)}
            row = await lifecycle.report_progress(
                tx,
                self.job_id,
                progress=progress,
                message=message,
                where=[jobs_db.is_attempt(self.attempt)],
                values={"lease_expires_at": jobs_db.seconds_from_now(self.settings.lease_seconds)},
                data=data,
                without_input=not self._progress_webhook,
            )
            if row is None:
                raise JobGone()
        self.job = row
