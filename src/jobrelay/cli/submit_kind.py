"""`jobrelay submit KIND --input JSON|@file`: submit a job of any kind the service runs, and
`jobrelay kinds`: list those kinds.

`jobrelay submit prompt|quiz|ingest` keep their friendlier options; any other name after
`submit` is taken as a kind (`jobrelay submit video.caption --input '{"url": "https://…"}'`),
whose input is checked by the service against the kind's model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from jobrelay.cli.client import (
    ApiKeyOption,
    ApiUrlOption,
    InputError,
    JsonOption,
    cli_errors,
    open_client,
    print_json,
)
from jobrelay.cli.follow import watch_and_report
from jobrelay.cli.render import make_console
from jobrelay.cli.submit_options import (
    IdempotencyOption,
    MetadataOption,
    UserIdOption,
    WatchOption,
    WebhookEventOption,
    WebhookOption,
    delivery_options,
)

__all__ = ["KindSubmitGroup", "kinds_command"]

_console = make_console()


def parse_input(value: str) -> dict[str, Any]:
    """`--input`: a JSON object, `@FILE` holding one, or `@-` for standard input."""
    if value.startswith("@"):
        source = value[1:]
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--input {value}: cannot read {source}: {exc.strerror}") from exc
    else:
        text = value
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise InputError(f"--input is not valid JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise InputError("--input must be a JSON object (the job's input)")
    return parsed


@cli_errors
def submit_kind(
    ctx: typer.Context,
    input_value: Annotated[
        str,
        typer.Option(
            "--input",
            "-i",
            help="The job's input: a JSON object, @FILE, or @- for standard input.",
            metavar="JSON|@FILE",
        ),
    ],
    watch: WatchOption = False,
    webhook: WebhookOption = None,
    webhook_event: WebhookEventOption = None,
    metadata: MetadataOption = None,
    idempotency_key: IdempotencyOption = None,
    user_id: UserIdOption = None,
    json_output: JsonOption = False,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Submit a job of kind KIND (see `jobrelay kinds`) with the given input."""
    kind = str(ctx.info_name)
    job_input = parse_input(input_value)
    with open_client(api_url, api_key) as api:
        delivery = delivery_options(webhook, webhook_event, metadata, user_id, idempotency_key)
        submitted = delivery.submit(api, kind, job_input, delivery.idempotency_key)
        job = submitted.to_dict()
        job_id = submitted.id
        if not json_output:
            note = " [dim](same key as an earlier submission: existing job)[/]"
            _console.print(
                f"submitted {kind} job [bold]{job_id}[/]{note if submitted.replayed else ''}"
            )
        if watch:
            raise typer.Exit(int(watch_and_report(api, job_id, json_output=json_output)))
    if json_output:
        print_json(job)
    else:
        _console.print(f"[dim]follow it with: jobrelay jobs watch {job_id}[/]")


_generic = typer.Typer(add_completion=False)
_generic.command(
    context_settings={"help_option_names": ["--help", "-h"]},
)(submit_kind)


class KindSubmitGroup(TyperGroup):
    """`jobrelay submit`: the named commands, and any other name taken as a job kind."""

    # Typed loosely: typer vendors click in some versions and uses it in others.
    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name.startswith("-"):
            return command
        generic = typer.main.get_command(_generic)
        generic.help = f"Submit a job of kind {cmd_name} with --input JSON|@FILE."
        return generic


@cli_errors
def kinds_command(
    json_output: JsonOption = False,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """List the job kinds the service runs: name, queue, default deadline, input fields."""
    with open_client(api_url, api_key) as api:
        kinds = [item.to_dict() for item in api.kinds()]
    if json_output:
        print_json(kinds)
        return
    table = Table(title="Job kinds", expand=False)
    for column in ("kind", "queue", "deadline", "input fields", "runs"):
        table.add_column(column)
    for item in kinds:
        schema = item.get("input_schema") or {}
        required = set(schema.get("required") or [])
        fields = [
            f"{name}{'' if name in required else '?'}" for name in schema.get("properties") or {}
        ]
        table.add_row(
            str(item["name"]),
            str(item["queue"]),
            f"{item['deadline_seconds']} s",
            ", ".join(fields) or "-",
            "external worker" if item.get("delegated") else "worker",
        )
    _console.print(table)
