"""The root typer app: server commands, database and user administration, and the HTTP client commands."""

from __future__ import annotations

import sys

import typer
from pydantic import ValidationError
from rich.console import Console

from jobrelay.cli import db as db_commands
from jobrelay.cli import failures
from jobrelay.cli import jobs as jobs_commands
from jobrelay.cli import maintenance as maintenance_commands
from jobrelay.cli import me as me_commands
from jobrelay.cli import server as server_commands
from jobrelay.cli import submit as submit_commands
from jobrelay.cli import submit_kind as submit_kind_commands
from jobrelay.cli import users as users_commands
from jobrelay.cli.exit_codes import ExitCode

app = typer.Typer(
    name="jobrelay",
    help="jobrelay: submit slow work, get 202 and an id, follow it to the end.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

server_commands.register(app)
app.add_typer(db_commands.db_app, name="db")
app.add_typer(users_commands.users_app, name="users")
app.add_typer(maintenance_commands.maintenance_app, name="maintenance")
app.add_typer(submit_commands.submit_app, name="submit")
app.add_typer(jobs_commands.jobs_app, name="jobs")
app.command("kinds")(submit_kind_commands.kinds_command)
app.add_typer(me_commands.me_app, name="me")


def main() -> None:
    try:
        app()
    except ValidationError as exc:
        # A bad JOBRELAY_* value: the usage error it is, not a traceback.
        problems = "; ".join(
            f"JOBRELAY_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        typer.echo(f"error: invalid configuration: {problems}", err=True)
        sys.exit(ExitCode.USAGE)
    except Exception as exc:
        line = failures.describe(exc)
        if line is None:
            raise
        Console(stderr=True).print(f"[red]error:[/] {line}", soft_wrap=True, highlight=False)
        sys.exit(ExitCode.UNREACHABLE)
