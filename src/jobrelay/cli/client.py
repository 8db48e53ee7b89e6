"""What every HTTP command shares: options, the `jobrelay.Client` they talk through, and how
failures read.

Every failure ends a command the same way, one line on stderr and an exit code:

    CliError                  exit 2: a bad option or file, caught before any request
     └── InputError
    jobrelay.ApiError         exit 2 for 4xx (not found, conflict, invalid input),
                              exit 3 for 5xx (the service is there but cannot serve)
     └── ApiConnectionError   exit 3: connection refused, DNS failure, timeout
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from jobrelay.cli.exit_codes import ExitCode
from jobrelay.client import ApiConnectionError, ApiError, Client
from jobrelay.client.errors import describe_detail
from jobrelay.config import get_settings

__all__ = [
    "ApiKeyOption",
    "ApiUrlOption",
    "CliError",
    "InputError",
    "JsonOption",
    "cli_errors",
    "describe_detail",
    "err_console",
    "exit_code_for_error",
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


class CliError(Exception):
    """A failure the user should read as one line, ending the command with `exit_code`."""

    exit_code: ExitCode = ExitCode.USAGE


class InputError(CliError):
    """Bad input found before talking to the service."""

    exit_code = ExitCode.USAGE


def exit_code_for_error(error: ApiError) -> ExitCode:
    """4xx is the caller's to fix (2); no answer or a 5xx means the service cannot serve (3)."""
    if error.status is None or error.status >= 500:
        return ExitCode.UNREACHABLE
    return ExitCode.USAGE


def open_client(api_url: str | None, api_key: str | None) -> Client:
    """Build a client from the options, falling back to `JOBRELAY_API_URL` / `JOBRELAY_API_KEY`
    (or the `.env` file)."""
    settings = get_settings()
    url = (api_url or settings.api_url).strip()
    key = (api_key or settings.api_key).strip()
    if not url.startswith(("http://", "https://")):
        raise InputError(f"invalid API URL {url!r}: expected http://host:port")
    if not key:
        raise InputError("no API key: pass --api-key or set JOBRELAY_API_KEY")
    return Client(url, key)


err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def cli_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Run a command so that every `CliError` or `ApiError` ends it with one line and its
    exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CliError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
            raise typer.Exit(int(exc.exit_code)) from None
        except ApiError as exc:
            text = exc.message if isinstance(exc, ApiConnectionError) else str(exc)
            err_console.print(f"[bold red]error:[/] {escape(text)}")
            raise typer.Exit(int(exit_code_for_error(exc))) from None

    return wrapper


def print_json(value: Any) -> None:
    """Write JSON to stdout, bypassing rich so nothing but the document is printed."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
    sys.stdout.flush()
