"""`jobrelay db ...`: migrations, demo data, and backups with pg_dump / pg_restore."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from jobrelay import seed as seed_module
from jobrelay.cli.exit_codes import ExitCode
from jobrelay.cli.target import DEFAULT_DATA_DIR, DataDirOption, servers
from jobrelay.config import Settings
from jobrelay.db import backup as backup_db
from jobrelay.db.backup import PgTools
from jobrelay.db.engine import make_engine
from jobrelay.db.migrate import upgrade as run_upgrade
from jobrelay.seed import SeedReport
from jobrelay.services import Services

db_app = typer.Typer(
    help="Database: migrations, demo data, backup and restore.", no_args_is_help=True
)
console = Console(stderr=True)
T = TypeVar("T")


@db_app.command()
def upgrade(
    revision: str = typer.Argument("head", help="Target revision."),
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Apply migrations up to REVISION (default: the newest). Behind PgBouncer, point
    JOBRELAY_DATABASE_URL at PostgreSQL itself for this."""
    with servers(data_dir, redis=False) as settings:
        run_upgrade(settings.sqlalchemy_url, revision)
    console.print(f"[green]database at {revision}[/]")


def _run_with_engine(settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Run `work` on a small engine (failures reaching the server are reported by `main`)."""

    async def main() -> T:
        engine = make_engine(settings, pool_size=1)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(main())


@db_app.command()
def seed(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Add demo users (their API keys are printed, once) and jobs of every kind in every status.

    Each run adds another batch (users `alice`, then `alice-2`, ...); nothing is replaced."""

    async def main(settings: Settings) -> SeedReport:
        services = await Services.open(settings, pool_size=2)
        try:
            return await seed_module.seed(services)
        finally:
            await services.close()

    with servers(data_dir, redis=True) as settings:
        report = asyncio.run(main(settings))
    if as_json:
        print(json.dumps(dataclasses.asdict(report)))
        return
    out = Console()
    table = Table("id", "name", "role", "tokens", title=f"demo users, batch {report.batch}")
    for user in report.users:
        table.add_row(str(user.id), user.name, user.role, str(user.tokens))
    out.print(table)
    out.print("API keys (shown once):")
    for user in report.users:
        print(f"  {user.name}: {user.api_key}")
    counts = ", ".join(f"{n} {status}" for status, n in sorted(report.jobs.items()))
    out.print(
        f"jobs: {counts}; {report.events} events, {report.questions} questions, "
        f"{report.students} students"
    )


def _tools(settings: Settings) -> PgTools:
    async def find(engine: AsyncEngine) -> PgTools:
        async with engine.connect() as conn:
            major = await backup_db.server_major(conn)
        return backup_db.find_tools(major, settings.pg_bin_dir)

    try:
        return _run_with_engine(settings, find)
    except backup_db.ToolsMissing as exc:
        console.print(f"[red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(ExitCode.USAGE) from None


@db_app.command()
def backup(
    file: Annotated[Path, typer.Argument(help="Archive to write (pg_dump custom format).")],
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Dump the database with pg_dump (custom format) into FILE."""
    try:
        with servers(data_dir, redis=False) as settings:
            backup_db.backup(_tools(settings), settings.asyncpg_dsn, file)
    except backup_db.BackupError as exc:
        console.print(f"[red]error:[/] pg_dump: {exc}", soft_wrap=True)
        raise typer.Exit(ExitCode.JOB_FAILED) from None
    console.print(f"[green]backup written to {file}[/] ({file.stat().st_size} bytes)")


@db_app.command()
def restore(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="Archive made by `db backup`.")
    ],
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Replace the database's contents with FILE (pg_restore, one transaction: all or nothing).

    Redis is not part of the archive: the workers' reconciler re-enqueues the restored queued
    jobs."""
    try:
        with servers(data_dir, redis=False) as settings:
            backup_db.restore(_tools(settings), settings.asyncpg_dsn, file)
    except backup_db.BackupError as exc:
        console.print(f"[red]error:[/] pg_restore: {exc}", soft_wrap=True)
        raise typer.Exit(ExitCode.JOB_FAILED) from None
    console.print(f"[green]database restored from {file}[/]")
