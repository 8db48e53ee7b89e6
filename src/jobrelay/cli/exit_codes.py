"""The contract's exit codes, shared by every command."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    JOB_FAILED = 1  # the job failed or was canceled
    USAGE = 2  # usage or input error
    UNREACHABLE = 3  # the service could not be reached
