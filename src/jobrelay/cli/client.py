"""The CLI's one HTTP client: where the API lives, how to authenticate, and how failures read.

Every client command goes through `ApiClient`, so every failure ends the same way:

    CliError                  one line on stderr and an exit code, never a traceback
     ├── InputError           exit 2: a bad option or file, caught before any request
     ├── ApiError             exit 2 for 4xx (not found, conflict, invalid input),
     │                        exit 3 for 5xx (the service is there but cannot serve)
     └── ServiceUnreachable   exit 3: connection refused, DNS failure, timeout
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any, ParamSpec, TypeVar
from urllib.parse import quote

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from jobrelay import __version__
from jobrelay.cli.exit_codes import ExitCode
from jobrelay.config import get_settings

__all__ = [
    "ApiClient",
    "ApiError",
    "ApiKeyOption",
    "ApiUrlOption",
    "CliError",
    "InputError",
    "JsonOption",
    "ServiceUnreachable",
    "cli_errors",
    "describe_detail",
    "err_console",
    "job_path",
    "open_client",
    "print_json",
]

P = ParamSpec("P")
R = TypeVar("R")

ApiUrlOption = Annotated[
    str | None,
    typer.Option(
        "--api-url",
        help="Base URL of the jobrelay API [env: JOBRELAY_API_URL].",
        show_default=False,
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        help="API key sent as a bearer token [env: JOBRELAY_API_KEY].",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON only.")]

# Rate-limited submissions wait for the server's Retry-After, a few times, capped.
_MAX_RATE_LIMIT_RETRIES = 5
_MAX_RETRY_AFTER_SECONDS = 60.0
_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class CliError(Exception):
    """A failure the user should read as one line, ending the command with `exit_code`."""

    exit_code: ExitCode = ExitCode.USAGE


class InputError(CliError):
    """Bad input found before talking to the service."""

    exit_code = ExitCode.USAGE


class ServiceUnreachable(CliError):
    """No HTTP answer at all: the service is down, the URL is wrong, or it timed out."""

    exit_code = ExitCode.UNREACHABLE

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach jobrelay at {url}: {reason}")


class ApiError(CliError):
    """The API answered with its error shape (or at least a 4xx/5xx status)."""

    def __init__(
        self, status_code: int, code: str, message: str, details: list[Any] | None = None
    ) -> None:
        self.status_code = status_code
        self.code = code
        self.details = details or []
        self.exit_code = ExitCode.USAGE if status_code < 500 else ExitCode.UNREACHABLE
        super().__init__(_describe(code, message, self.details))

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        code = f"http_{response.status_code}"
        message = f"HTTP {response.status_code} {response.reason_phrase}".strip()
        details: list[Any] = []
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            code = str(error.get("code") or code)
            message = str(error.get("message") or message)
            raw_details = error.get("details")
            if isinstance(raw_details, list):
                details = raw_details
        return cls(response.status_code, code, message, details)


def _describe(code: str, message: str, details: list[Any]) -> str:
    """Fold the error shape into one line: message, code, then the details that say where."""
    parts = [describe_detail(detail) for detail in details[:5]]
    parts = [part for part in parts if part]
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


def _connection_reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, httpx.TimeoutException):
        return "request timed out"
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused"
    if "name or service not known" in lowered or "nodename nor servname" in lowered:
        return "unknown host"
    return text


class ApiClient:
    """A thin synchronous client over `httpx.Client` that speaks the API's error shape."""

    def __init__(
        self, base_url: str, api_key: str, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"User-Agent": f"jobrelay-cli/{__version__}", "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=_TIMEOUT, transport=transport
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def translate_errors(self) -> Iterator[None]:
        """Turn transport failures inside the block into `ServiceUnreachable`."""
        try:
            yield
        except httpx.TransportError as exc:
            raise ServiceUnreachable(self.base_url, _connection_reason(exc)) from exc

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request; a 4xx/5xx raises `ApiError`, a 429 waits for `Retry-After` first."""
        clean_params = {k: v for k, v in (params or {}).items() if v is not None}
        waits_left = _MAX_RATE_LIMIT_RETRIES
        while True:
            with self.translate_errors():
                response = self.http.request(
                    method, path, json=json_body, params=clean_params, headers=headers
                )
            if response.status_code == 429 and waits_left > 0:
                waits_left -= 1
                time.sleep(_retry_after(response))
                continue
            if response.status_code >= 400:
                raise ApiError.from_response(response)
            return response

    def get_json(self, path: str, *, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params).json()

    def post_json(
        self, path: str, body: Any = None, *, headers: Mapping[str, str] | None = None
    ) -> Any:
        return self.request("POST", path, json_body=body, headers=headers).json()


def _retry_after(response: httpx.Response) -> float:
    try:
        seconds = float(response.headers.get("retry-after", "1"))
    except ValueError:
        seconds = 1.0
    return min(max(seconds, 0.1), _MAX_RETRY_AFTER_SECONDS)


def job_path(job_id: str, *parts: str) -> str:
    """`/v1/jobs/{id}/...` with the id quoted, so a stray `/` cannot reach another route."""
    return "/".join(["/v1/jobs", quote(job_id, safe=""), *parts])


def open_client(api_url: str | None, api_key: str | None) -> ApiClient:
    """Build a client from the options, falling back to `JOBRELAY_API_URL` / `JOBRELAY_API_KEY`."""
    settings = get_settings()
    url = (api_url or settings.api_url).strip()
    key = (api_key or settings.api_key).strip()
    if not url.startswith(("http://", "https://")):
        raise InputError(f"invalid API URL {url!r}: expected http://host:port")
    if not key:
        raise InputError("no API key: pass --api-key or set JOBRELAY_API_KEY")
    return ApiClient(url, key)


err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def cli_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Run a command so that every `CliError` ends it with one line and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CliError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
            raise typer.Exit(int(exc.exit_code)) from None

    return wrapper


def print_json(value: Any) -> None:
    """Write JSON to stdout, bypassing rich so nothing but the document is printed."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
    sys.stdout.flush()
