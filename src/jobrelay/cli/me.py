"""`jobrelay me`: who the API key belongs to, and the secret that signs that user's webhooks."""

from __future__ import annotations

from typing import Annotated

import typer

from jobrelay.cli.client import (
    ApiKeyOption,
    ApiUrlOption,
    JsonOption,
    cli_errors,
    open_client,
    print_json,
)
from jobrelay.cli.render import make_console, me_panel

me_app = typer.Typer(
    name="me",
    help="Show the caller (the API key's user) and its webhook secret.",
    invoke_without_command=True,
)

_console = make_console()


@me_app.callback()
@cli_errors
def me(
    ctx: typer.Context,
    json_output: JsonOption = False,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Show the user the API key belongs to: role, token balance, subscription."""
    if ctx.invoked_subcommand is not None:
        return
    with open_client(api_url, api_key) as api:
        user = api.me().to_dict()
    if json_output:
        print_json(user)
    else:
        _console.print(me_panel(user))


@me_app.command("webhook-secret")
@cli_errors
def webhook_secret(
    rotate: Annotated[
        bool,
        typer.Option("--rotate", help="Replace the secret; webhooks are signed with the new one."),
    ] = False,
    json_output: JsonOption = False,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Print the secret that signs your outgoing webhooks (Standard Webhooks, `whsec_…`)."""
    with open_client(api_url, api_key) as api:
        secret = api.webhook_secret(rotate=rotate)
    if json_output:
        print_json({"secret": secret})
    else:
        _console.print(secret, highlight=False, soft_wrap=True)
