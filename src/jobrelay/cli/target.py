"""Which PostgreSQL and Redis the direct-access commands (`db`, `users`) use.

`JOBRELAY_DATABASE_URL` / `JOBRELAY_REDIS_URL` when set; otherwise the embedded servers of
`jobrelay dev` under `--data-dir`: shared while `jobrelay dev` runs, started for the command
and stopped after it when it does not.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from jobrelay.cli.exit_codes import ExitCode
from jobrelay.config import Settings, get_settings

__all__ = ["DEFAULT_DATA_DIR", "DataDirOption", "servers"]

DEFAULT_DATA_DIR = Path(".jobrelay")

DataDirOption = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        help="Without JOBRELAY_DATABASE_URL: the data directory of `jobrelay dev`.",
    ),
]

console = Console(stderr=True)


@contextlib.contextmanager
def servers(data_dir: Path, *, redis: bool) -> Iterator[Settings]:
    """Settings whose URLs point at the configured servers or at the embedded ones."""
    settings = get_settings()
    need_postgres = not settings.database_url
    need_redis = redis and not settings.redis_url
    if not need_postgres and not need_redis:
        yield settings
        return
    data_dir = data_dir.expanduser().resolve()
    if need_postgres and not (data_dir / "postgres" / "PG_VERSION").is_file():
        console.print(
            f"[red]error:[/] set JOBRELAY_DATABASE_URL, or run `jobrelay dev` first: "
            f"{data_dir} holds no embedded database.",
            soft_wrap=True,
            highlight=False,
        )
        raise typer.Exit(ExitCode.USAGE)
    from jobrelay.embedded import IncompatibleDataDirectory, start_embedded

    try:
        embedded = start_embedded(data_dir, postgres=need_postgres, redis=need_redis)
    except IncompatibleDataDirectory as exc:
        console.print(f"[red]error:[/] {exc}", soft_wrap=True, highlight=False)
        raise typer.Exit(ExitCode.USAGE) from None
    with embedded:
        yield settings.model_copy(
            update={
                "database_url": settings.database_url or embedded.database_url,
                "redis_url": settings.redis_url or embedded.redis_url or "",
            }
        )
