"""How a job body tells the runtime what went wrong.

JobError
 ├── JobFailed      the job cannot succeed: it ends `failed` with this code and message
 ├── TransientError worth another attempt after a backoff (until the attempt budget runs out)
 └── JobGone        the job was canceled or taken over elsewhere: stop quietly
"""

from __future__ import annotations


class JobError(Exception):
    def __init__(self, message: str, *, code: str = "job_failed") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class JobFailed(JobError):
    pass


class TransientError(JobError):
    def __init__(self, message: str, *, code: str = "transient_error") -> None:
        super().__init__(message, code=code)


class JobGone(JobError):
    def __init__(self, message: str = "the job is no longer ours to run") -> None:
        super().__init__(message, code="job_gone")
