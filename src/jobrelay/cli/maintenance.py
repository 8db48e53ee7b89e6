"""`jobrelay maintenance ...`: run one round of the workers' periodic work now.

The workers run all of these on a schedule (ARQ cron); these commands are for operators: after
a Redis restore, before a report, or from an external scheduler when no worker runs the crons.
They talk to PostgreSQL and Redis directly (`JOBRELAY_DATABASE_URL`, `JOBRELAY_REDIS_URL`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from jobrelay.cli.exit_codes import ExitCode
from jobrelay.config import get_settings
from jobrelay.runtime import maintenance
from jobrelay.services import Services

maintenance_app = typer.Typer(
    help="Run the periodic work once: reconcile, reap, purge, aggregate, check-generator.",
    no_args_is_help=True,
)
console = Console()
errors = Console(stderr=True)
T = TypeVar("T")
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _run(work: Callable[[Services], Awaitable[T]]) -> T:
    """Open the services, run `work`, close; unreachable servers exit 3 with one line (`main`)."""
    settings = get_settings()
    if not settings.database_url or not settings.redis_url:
        errors.print("[red]error:[/] set JOBRELAY_DATABASE_URL and JOBRELAY_REDIS_URL.")
        raise typer.Exit(ExitCode.USAGE)

    async def main() -> T:
        services = await Services.open(settings, pool_size=2)
        try:
            return await work(services)
        finally:
            await services.close()

    return asyncio.run(main())


def _print(report: Any, as_json: bool, text: str) -> None:
    if as_json:
        is_report = dataclasses.is_dataclass(report) and not isinstance(report, type)
        body = dataclasses.asdict(report) if is_report else report
        print(json.dumps(body, default=str))
    else:
        console.print(text)


@maintenance_app.command()
def reconcile(as_json: JsonOption = False) -> None:
    """Re-enqueue jobs PostgreSQL has queued but Redis lost; hand jobs of dead workers on."""
    report = _run(lambda s: maintenance.reconcile(s, quiet_for_seconds=0))
    _print(
        report,
        as_json,
        f"requeued {report.requeued}, released {report.released}, unparked {report.unparked}, "
        f"timed out {report.timed_out}, webhooks resent {report.webhooks_resent}",
    )


@maintenance_app.command()
def reap(as_json: JsonOption = False) -> None:
    """Fail processing jobs past their deadline with `timeout`."""
    failed = _run(maintenance.reap)
    _print({"timed_out": failed}, as_json, f"timed out {failed} job(s) past their deadline")


@maintenance_app.command()
def purge(
    retention_days: Annotated[
        int | None,
        typer.Option(min=1, help="Override JOBRELAY_RETENTION_DAYS for this run."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Delete finished jobs, their events and deliveries, and callbacks older than the retention
    period. Questions and students are kept."""
    report = _run(lambda s: maintenance.purge(s, retention_days=retention_days))
    _print(
        report,
        as_json,
        f"purged {report.jobs} job(s), {report.events} event(s), {report.deliveries} "
        f"delivery attempt(s) and {report.callbacks} callback(s) older than {report.before:%c}",
    )


@maintenance_app.command()
def aggregate(
    since: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Rebuild daily stats from this day (UTC)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write daily counts and p50/p95 run times per kind and status for the days that are over."""
    report = _run(lambda s: maintenance.aggregate(s, since=since.date() if since else None))
    text = (
        f"aggregated {report.first}..{report.last}: {report.rows} row(s)"
        if report.first
        else "nothing to aggregate"
    )
    _print(report, as_json, text)


@maintenance_app.command("check-generator")
def check_generator(as_json: JsonOption = False) -> None:
    """GET the generator's /health and record it for /readyz; exit 3 when it is down."""
    check = _run(maintenance.check_generator)
    if check is None:
        errors.print("[red]error:[/] no generator configured (JOBRELAY_GENERATOR_URL).")
        raise typer.Exit(ExitCode.USAGE)
    _print(check, as_json, f"{check.url}: {'ok' if check.ok else 'down'} ({check.detail})")
    if not check.ok:
        raise typer.Exit(ExitCode.UNREACHABLE)
