"""How a job body tells the runtime what went wrong.

JobError
 ├── JobFailed      the job cannot succeed: it ends `failed` with this code and message
 ├── TransientError worth another attempt after a backoff (until the attempt budget runs out)
 └── JobGone        the job was canceled or taken over elsewhere: stop quietly
"""

from __future__ import annotations


class JobError(Exception):
    """`code` is snake_case for programs (the job's `error.code`), `message` is for a person."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class JobFailed(JobError):
    """Raise from a job body to end the job `failed` with this code and message; not retried."""


class TransientError(JobError):
    """Raise from a job body to retry the attempt after a backoff."""


class JobGone(JobError):
    def __init__(self, message: str = "the job is no longer ours to run") -> None:
        super().__init__("job_gone", message)


def insufficient_tokens(balance: int, cost: int) -> JobFailed:
    return JobFailed(
        "insufficient_tokens",
        f"This job costs {cost} tokens and the balance is {balance}.",
    )
