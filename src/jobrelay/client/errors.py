"""What a failed call raises.

    ApiError               the call failed: `status`, `code`, `message`, `details`
     └── ApiConnectionError    no HTTP answer at all (refused, reset, DNS, timeout), after
                               the retries that were safe; `status` is None
    WaitTimeout            `wait(id, timeout)` ran out of time; the job goes on (a TimeoutError)

`ApiError` mirrors the contract's error shape `{"error": {"code", "message", "details"}}`;
an answer without that shape (a proxy's 502 page) gets the code `http_<status>`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobrelay.client.models import Job

__all__ = ["ApiConnectionError", "ApiError", "WaitTimeout", "describe_detail"]


class ApiError(Exception):
    """The API refused or failed a call.

    Attributes: `status` (the HTTP status, None when no answer came), `code` (snake_case,
    e.g. `not_found`, `idempotency_key_reused`), `message` (for a person), `details` (a list,
    e.g. the validation errors of a 422). `str()` reads `message (code): details`.
    """

    def __init__(
        self, status: int | None, code: str, message: str, details: list[Any] | None = None
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details: list[Any] = list(details or [])
        super().__init__(_describe(code, message, self.details))

    @classmethod
    def from_answer(cls, status: int, reason: str, body: bytes) -> ApiError:
        """Read the contract's error shape from an answer, or make do without it."""
        code = f"http_{status}"
        message = f"HTTP {status} {reason}".strip()
        details: list[Any] = []
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        error = parsed.get("error") if isinstance(parsed, dict) else None
        if isinstance(error, dict):
            code = str(error.get("code") or code)
            message = str(error.get("message") or message)
            raw_details = error.get("details")
            if isinstance(raw_details, list):
                details = raw_details
        return cls(status, code, message, details)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, message={self.message!r})"


class ApiConnectionError(ApiError):
    """No answer from the API: `code` is `timeout` or `connection_error`, `status` None."""

    def __init__(self, base_url: str, reason: str, *, timed_out: bool = False) -> None:
        self.base_url = base_url
        self.reason = reason
        super().__init__(
            None,
            "timeout" if timed_out else "connection_error",
            f"cannot reach jobrelay at {base_url}: {reason}",
        )


class WaitTimeout(TimeoutError):
    """`wait()` gave up after its timeout; `job` is the job as last seen (still running)."""

    def __init__(self, job: Job, timeout: float) -> None:
        self.job = job
        self.timeout = timeout
        super().__init__(f"job {job.id} is still {job.status} after {timeout:g} s")


def _describe(code: str, message: str, details: list[Any]) -> str:
    parts = [part for part in (describe_detail(detail) for detail in details[:5]) if part]
    text = f"{message} ({code})"
    if parts:
        text += ": " + "; ".join(parts)
    return " ".join(text.split())


def describe_detail(detail: Any) -> str:
    """One error detail as text: `where: what` for the dicts validators produce."""
    if not isinstance(detail, dict):
        return str(detail)
    where = detail.get("loc") or detail.get("field") or detail.get("path")
    what = detail.get("msg") or detail.get("message") or detail.get("reason")
    if isinstance(where, list):
        where = ".".join(str(part) for part in where if part != "body")
    if where and what:
        return f"{where}: {what}"
    if what or where:
        return str(what or where)
    return ", ".join(f"{key}={value}" for key, value in detail.items())
