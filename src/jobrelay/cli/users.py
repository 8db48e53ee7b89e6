"""`jobrelay users ...`: talks to the database directly, so the first admin can be made."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from jobrelay.cli.target import DEFAULT_DATA_DIR, DataDirOption, servers
from jobrelay.config import Settings
from jobrelay.users.schemas import UserCreate, UserOut

if TYPE_CHECKING:
    from jobrelay.services import Services

users_app = typer.Typer(help="Users and API keys (direct database access).", no_args_is_help=True)
console = Console()


async def _with_services(settings: Settings) -> Services:
    from jobrelay.services import Services

    return await Services.open(settings, pool_size=2)


async def _create(settings: Settings, body: UserCreate) -> tuple[UserOut, str]:
    from jobrelay.users import service as users_service

    services = await _with_services(settings)
    try:
        return await users_service.create_user(services, body)
    finally:
        await services.close()


async def _list(settings: Settings) -> list[UserOut]:
    from jobrelay.users import service as users_service

    services = await _with_services(settings)
    try:
        items, _ = await users_service.list_users(services, limit=1000, after_id=None)
        return items
    finally:
        await services.close()


@users_app.command()
def create(
    name: Annotated[str, typer.Argument(help="The user's name.")],
    admin: Annotated[bool, typer.Option("--admin", help="Make an admin.")] = False,
    tokens: Annotated[int, typer.Option(min=0, help="Starting token balance.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Create a user and print its API key, once."""
    body = UserCreate(name=name, role="admin" if admin else "user", tokens=tokens)
    with servers(data_dir, redis=True) as settings:
        user, key = asyncio.run(_create(settings, body))
    if as_json:
        print(json.dumps({"user": user.model_dump(mode="json"), "api_key": key}))
        return
    console.print(
        f"created user [bold]{user.id}[/] ({user.name}, {user.role}, {user.tokens} tokens)"
    )
    console.print(f"API key (shown once): [bold green]{key}[/]")


@users_app.command("list")
def list_users(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """List users."""
    with servers(data_dir, redis=True) as settings:
        items = asyncio.run(_list(settings))
    if as_json:
        print(json.dumps([u.model_dump(mode="json") for u in items]))
        return
    table = Table("id", "name", "role", "tokens", "subscription expires", "created")
    for u in items:
        table.add_row(
            str(u.id),
            u.name,
            u.role,
            str(u.tokens),
            u.subscription_expires_at.isoformat() if u.subscription_expires_at else "-",
            u.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)
