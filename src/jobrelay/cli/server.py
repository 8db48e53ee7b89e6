"""Server commands: `dev` (the whole stack in one process), `api`, `worker`, `generator`.

The server stack is imported inside each command, so client commands start quickly.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel

from jobrelay.cli.exit_codes import ExitCode
from jobrelay.config import Settings, get_settings

console = Console(stderr=True)


def _require(settings: Settings) -> None:
    missing = [
        name
        for name, value in (
            ("JOBRELAY_DATABASE_URL", settings.database_url),
            ("JOBRELAY_REDIS_URL", settings.redis_url),
        )
        if not value
    ]
    if missing:
        console.print(f"[red]error:[/] set {' and '.join(missing)} (or use `jobrelay dev`).")
        raise typer.Exit(2)


def _persisted_secret(path: Path, make: str) -> str:
    if path.exists():
        return path.read_text().strip()
    path.write_text(make)
    path.chmod(0o600)
    return make


def _load_kinds() -> None:
    """Import every job kind now, so a broken or duplicate one stops start-up in one line."""
    from jobrelay.kinds import KindLoadError, load_kinds

    try:
        load_kinds()
    except KindLoadError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def dev(
    data_dir: Annotated[Path, typer.Option(help="Where the embedded databases live.")] = Path(
        ".jobrelay"
    ),
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port.")] = 8000,
    generator_port: Annotated[int, typer.Option(help="Reference generator port.")] = 8001,
    no_generator: Annotated[
        bool, typer.Option("--no-generator", help="Do not start the reference generator.")
    ] = False,
) -> None:
    """Run the whole stack in one process: API, one worker and the reference generator, on an
    embedded PostgreSQL and Redis under --data-dir (or on JOBRELAY_DATABASE_URL/REDIS_URL)."""
    from jobrelay.cli.bootstrap import ensure_admin_key
    from jobrelay.db.migrate import upgrade
    from jobrelay.embedded import EmbeddedServerError, IncompatibleDataDirectory, start_embedded
    from jobrelay.runner_process import api_server, generator_server, run_together
    from jobrelay.users.keys import new_webhook_secret

    _load_kinds()
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = get_settings()
    try:
        embedded = start_embedded(data_dir, postgres=not env.database_url, redis=not env.redis_url)
    except EmbeddedServerError as exc:
        console.print(f"[red]error:[/] {exc}", soft_wrap=True, highlight=False)
        incompatible = isinstance(exc, IncompatibleDataDirectory)
        raise typer.Exit(ExitCode.USAGE if incompatible else ExitCode.UNREACHABLE) from None
    try:
        overrides: dict[str, object] = {
            "database_url": env.database_url or embedded.database_url,
            "redis_url": env.redis_url or embedded.redis_url,
            "public_url": f"http://{host}:{port}",
        }
        if "JOBRELAY_WEBHOOK_ALLOW_PRIVATE" not in os.environ:
            overrides["webhook_allow_private"] = True
        if not env.generator_secret:
            overrides["generator_secret"] = _persisted_secret(
                data_dir / "generator-secret",
                new_webhook_secret(),
            )
        if not env.ai_worker_token:
            overrides["ai_worker_token"] = _persisted_secret(
                data_dir / "ai-worker-token", secrets.token_urlsafe(24)
            )
        if not no_generator and not env.generator_url:
            overrides["generator_url"] = f"http://{host}:{generator_port}"
        settings = env.model_copy(update=overrides)
        console.print("[dim]migrating the database...[/]")
        upgrade(settings.sqlalchemy_url)
        admin_key = ensure_admin_key(settings, data_dir / "admin-api-key")
        api_url = f"http://{host}:{port}"
        lines = [
            f"API        {api_url}",
            f"Swagger    {api_url}/docs",
            f"Dashboard  {api_url}/dashboard",
            f"Admin key  {admin_key}",
            f"           (also in {data_dir / 'admin-api-key'})",
            f"Database   {settings.database_url}",
            f"Redis      {settings.redis_url}",
        ]
        if not no_generator:
            lines.append(f"Generator  {settings.generator_url}")
        console.print(Panel("\n".join(lines), title="jobrelay dev", expand=False))
        console.print(
            f"Try: export JOBRELAY_API_URL={api_url} JOBRELAY_API_KEY={admin_key}\n"
            '     jobrelay submit prompt "Explain photosynthesis to a 10 year old" --watch',
            soft_wrap=True,
            highlight=False,
        )
        servers = [api_server(settings, host, port)]
        if not no_generator:
            servers.append(generator_server(settings, host, generator_port))
        asyncio.run(run_together(servers, with_worker=True, settings=settings))
    finally:
        embedded.stop()
        console.print("[dim]stopped.[/]")


def api(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
) -> None:
    """Run the HTTP API (production: many of these behind a load balancer)."""
    import uvicorn

    settings = get_settings()
    _require(settings)
    _load_kinds()
    uvicorn.run(
        "jobrelay.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def worker(
    queue: Annotated[
        list[str] | None,
        typer.Option(
            "--queue",
            "-q",
            help="Serve this queue (repeat for several); default: every kind's queue.",
        ),
    ] = None,
) -> None:
    """Run a worker (production: as many as the load needs, on any machines), serving the given
    queues, or every queue a kind uses."""
    settings = get_settings()
    _require(settings)
    _load_kinds()
    from workers.main import make_worker

    from jobrelay.kinds import load_kinds
    from jobrelay.kinds.registry import QUEUE_NAME

    for name in queue or []:
        if not QUEUE_NAME.match(name):
            console.print(f"[red]error:[/] {name!r} is not a queue name (letters, digits, '._-').")
            raise typer.Exit(2)
    unused = sorted(set(queue or []) - set(load_kinds().queues()))
    if unused:
        console.print(f"[yellow]note:[/] no loaded kind uses queue {', '.join(unused)} yet.")
    make_worker(settings, queues=queue).run()


def generator(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="Port.")] = 8001,
) -> None:
    """Run the reference AI generator (answers /generate, calls back with questions)."""
    from jobrelay.runner_process import generator_server, run_together

    settings = get_settings()
    asyncio.run(
        run_together([generator_server(settings, host, port)], with_worker=False, settings=settings)
    )


def register(app: typer.Typer) -> None:
    app.command()(dev)
    app.command()(api)
    app.command()(worker)
    app.command()(generator)
