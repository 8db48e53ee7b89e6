"""The job state machine: one table of allowed transitions, used by every writer."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"  # accepted, waiting for a worker (or for a free running slot)
    PROCESSING = "processing"  # a worker or an external generator is on it
    COMPLETED = "completed"  # done; nothing leaves this state
    FAILED = "failed"  # gave up; `error` says why; may be retried
    CANCELED = "canceled"  # stopped by a person; may be retried


ALLOWED_TRANSITIONS: frozenset[tuple[JobStatus, JobStatus]] = frozenset(
    {
        (JobStatus.QUEUED, JobStatus.PROCESSING),
        (JobStatus.QUEUED, JobStatus.CANCELED),
        (JobStatus.PROCESSING, JobStatus.COMPLETED),
        (JobStatus.PROCESSING, JobStatus.FAILED),
        (JobStatus.PROCESSING, JobStatus.CANCELED),
        (JobStatus.FAILED, JobStatus.QUEUED),
        (JobStatus.CANCELED, JobStatus.QUEUED),
    }
)

TERMINAL: frozenset[JobStatus] = frozenset(
    {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED}
)


def can_transition(source: JobStatus | str, target: JobStatus | str) -> bool:
    return (JobStatus(source), JobStatus(target)) in ALLOWED_TRANSITIONS


def sources_of(target: JobStatus) -> tuple[str, ...]:
    """The statuses a job may be in for a move to `target`; the WHERE clause of every writer."""
    return tuple(sorted(s.value for s, t in ALLOWED_TRANSITIONS if t == target))


def is_terminal(status: JobStatus | str) -> bool:
    return JobStatus(status) in TERMINAL
