"""`jobrelay jobs …`: list, show, watch, cancel and retry jobs, and read their events."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

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
from jobrelay.cli.render import (
    events_table,
    job_panel,
    jobs_table,
    make_console,
    questions_table,
)

jobs_app = typer.Typer(
    name="jobs",
    help="List, inspect, watch, cancel and retry jobs.",
    no_args_is_help=True,
)


class StatusChoice(StrEnum):
    queued = "queued"
    processing = "processing"
    completed = "completed"
    failed = "failed"
    canceled = "canceled"


JobIdArgument = Annotated[
    str, typer.Argument(help="The job's id.", metavar="JOB_ID", show_default=False)
]

_console = make_console()


@jobs_app.command("list")
@cli_errors
def list_jobs(
    status: Annotated[
        StatusChoice | None, typer.Option("--status", help="Only jobs in this status.")
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="Only jobs of this kind (see `jobrelay kinds`)."),
    ] = None,
    user_id: Annotated[
        int | None, typer.Option("--user-id", help="Only this user's jobs (admins).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100, help="Page size.")] = 20,
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="Continue from a previous page's cursor.")
    ] = None,
    json_output: JsonOption = False,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """List jobs, newest first."""
    with open_client(api_url, api_key) as api:
        page = api.list_page(
            kind or None,
            status.value if status else None,
            user_id=user_id,
            limit=limit,
            cursor=cursor,
        ).to_dict()
    if json_output:
        print_json(page)
        return
    items = page.get("items") or []
    if not items:
        _console.print("no jobs")
    else:
        _console.print(jobs_table(items))
    if page.get("next_cursor"):
        _console.print(f"[dim]more: jobrelay jobs list --cursor {page['next_cursor']}[/]")


@jobs_app.command("show")
@cli_errors
def show_job(
    job_id: JobIdArgument,
    questions: Annotated[
        bool, typer.Option("--questions", help="Also list a quiz job's questions.")
    ] = False,
    json_output: JsonOption = False,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Show one job. With --questions --json, print the quiz result instead of the job."""
    with open_client(api_url, api_key) as api:
        job = api.get(job_id).to_dict()
        result: dict[str, Any] | None = None
        if questions:
            if job.get("status") != "completed":
                raise InputError(
                    f"job {job_id} is {job.get('status')}; --questions lists a finished quiz's "
                    "questions"
                )
            result = api.result(job_id)
            if not isinstance(result.get("questions"), list):
                raise InputError(
                    f"job {job_id} is a {job.get('kind')} job; its result has no questions "
                    "(--questions lists a quiz's)"
                )
    if json_output:
        print_json(result if result is not None else job)
        return
    _console.print(job_panel(job))
    if result is not None:
        items = result.get("questions") or []
        if items:
            _console.print(questions_table(items))
        else:
            _console.print("no questions")


@jobs_app.command("watch")
@cli_errors
def watch(
    job_id: JobIdArgument,
    json_output: JsonOption = False,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Follow a job live until it ends: exit 0 if it completed, 1 if it failed or was canceled."""
    with open_client(api_url, api_key) as api:
        code = watch_and_report(api, job_id, json_output=json_output)
    raise typer.Exit(int(code))


@jobs_app.command("cancel")
@cli_errors
def cancel(
    job_id: JobIdArgument,
    json_output: JsonOption = False,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Cancel a queued or running job (a finished job cannot be canceled: exit 2)."""
    with open_client(api_url, api_key) as api:
        job = api.cancel(job_id).to_dict()
    if json_output:
        print_json(job)
    else:
        _console.print(f"job {job.get('id', job_id)} is now [magenta]{job.get('status')}[/]")


@jobs_app.command("retry")
@cli_errors
def retry(
    job_id: JobIdArgument,
    watch_job: Annotated[
        bool, typer.Option("--watch", help="Follow the job live until it ends.")
    ] = False,
    json_output: JsonOption = False,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Queue a failed or canceled job again; attempts keep counting."""
    with open_client(api_url, api_key) as api:
        job = api.retry(job_id).to_dict()
        if watch_job:
            code = watch_and_report(api, str(job.get("id", job_id)), json_output=json_output)
            raise typer.Exit(int(code))
    if json_output:
        print_json(job)
    else:
        _console.print(
            f"job {job.get('id', job_id)} is [yellow]{job.get('status')}[/] again "
            f"(attempts so far: {job.get('attempts', 0)})"
        )


@jobs_app.command("events")
@cli_errors
def events(
    job_id: JobIdArgument,
    json_output: JsonOption = False,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """List a job's stored events, oldest first."""
    with open_client(api_url, api_key) as api:
        page = {"items": [event.to_dict() for event in api.stored_events(job_id)]}
    if json_output:
        print_json(page)
        return
    items = page.get("items") or []
    if items:
        _console.print(events_table(items))
    else:
        _console.print("no events")
