"""`jobrelay db ...`: migrations (and, with the operations work, seed, backup and restore)."""

from __future__ import annotations

import typer
from rich.console import Console

from jobrelay.config import get_settings
from jobrelay.db.migrate import upgrade as run_upgrade

db_app = typer.Typer(
    help="Database: migrations, demo data, backup and restore.", no_args_is_help=True
)
console = Console(stderr=True)


def require_database_url() -> str:
    settings = get_settings()
    if not settings.database_url:
        console.print("[red]error:[/] set JOBRELAY_DATABASE_URL.")
        raise typer.Exit(2)
    return settings.sqlalchemy_url


@db_app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    run_upgrade(require_database_url(), revision)
    console.print(f"[green]database at {revision}[/]")
