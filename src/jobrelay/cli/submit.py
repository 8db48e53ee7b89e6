"""`jobrelay submit …`: send a prompt, a quiz request or a file of records as jobs.

Every submit takes the same delivery options (`--webhook`, `--metadata`,
`--idempotency-key`, `--user-id`) and `--watch` to follow the work to its end.
A records file of any size goes in jobs of at most 1000 records, watched as one.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from jobrelay.cli.client import (
    ApiKeyOption,
    ApiUrlOption,
    CliError,
    JsonOption,
    cli_errors,
    describe_detail,
    err_console,
    open_client,
    print_json,
)
from jobrelay.cli.exit_codes import ExitCode
from jobrelay.cli.follow import StoppedWatching, stopped_note, watch_and_report, watch_jobs
from jobrelay.cli.records_file import (
    Rejection,
    SourceRow,
    chunked,
    read_records,
    write_rejections,
)
from jobrelay.cli.render import make_console
from jobrelay.cli.submit_kind import KindSubmitGroup
from jobrelay.cli.submit_options import (
    Delivery,
    IdempotencyOption,
    MetadataOption,
    UserIdOption,
    WatchOption,
    WebhookEventOption,
    WebhookOption,
    delivery_options,
)
from jobrelay.client import ApiError, Client

submit_app = typer.Typer(
    name="submit",
    cls=KindSubmitGroup,
    help="Submit jobs: a prompt, a quiz, a file of student records, or a job of any kind with "
    "`jobrelay submit KIND --input JSON|@FILE` (list them with `jobrelay kinds`).",
    no_args_is_help=True,
)

RECORDS_PER_JOB = 1000

_console = make_console()


def _submit_one(
    api_url: str | None,
    api_key: str | None,
    kind: str,
    job_input: dict[str, Any],
    delivery: Delivery,
    *,
    watch: bool,
    json_output: bool,
) -> None:
    with open_client(api_url, api_key) as api:
        submitted = delivery.submit(api, kind, job_input, delivery.idempotency_key)
        job, replayed, job_id = submitted.to_dict(), submitted.replayed, submitted.id
        if not json_output:
            note = " [dim](same key as an earlier submission: existing job)[/]" if replayed else ""
            _console.print(f"submitted {kind} job [bold]{job_id}[/]{note}")
        if watch:
            raise typer.Exit(int(watch_and_report(api, job_id, json_output=json_output)))
    if json_output:
        print_json(job)
    else:
        _console.print(f"[dim]follow it with: jobrelay jobs watch {job_id}[/]")


@submit_app.command("prompt")
@cli_errors
def submit_prompt(
    text: Annotated[
        str,
        typer.Argument(
            help="What the prompt should be about; '-' reads standard input.", metavar="TEXT"
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
    """Generate an enhanced AI prompt from TEXT (kind prompt.generate)."""
    manual_prompt = sys.stdin.read() if text == "-" else text
    delivery = delivery_options(webhook, webhook_event, metadata, user_id, idempotency_key)
    _submit_one(
        api_url,
        api_key,
        "prompt.generate",
        {"manual_prompt": manual_prompt},
        delivery,
        watch=watch,
        json_output=json_output,
    )


@submit_app.command("quiz")
@cli_errors
def submit_quiz(
    size: Annotated[int, typer.Option("--size", min=1, max=100, help="Number of questions.")] = 10,
    level: Annotated[
        str | None, typer.Option("--level", help="Declared level, e.g. Advanced.")
    ] = None,
    goal: Annotated[str | None, typer.Option("--goal", help="Learning goal, e.g. job.")] = None,
    profession: Annotated[str | None, typer.Option("--profession", help="Profession.")] = None,
    frequency: Annotated[
        str | None, typer.Option("--frequency", help="Study frequency, e.g. daily.")
    ] = None,
    motivation: Annotated[
        int | None, typer.Option("--motivation", min=1, max=10, help="Motivation, 1 to 10.")
    ] = None,
    topic: Annotated[
        list[str] | None, typer.Option("--topic", help="Preferred topic (repeatable).")
    ] = None,
    weak_skill: Annotated[
        list[str] | None, typer.Option("--weak-skill", help="Skill to work on (repeatable).")
    ] = None,
    instructions: Annotated[
        str | None, typer.Option("--instructions", help="Extra instructions for the generator.")
    ] = None,
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
    """Generate quiz questions through the AI generator (kind quiz.generate)."""
    quiz_input: dict[str, Any] = {"quiz_size": size}
    optional: dict[str, Any] = {
        "declared_level": level,
        "goals": goal,
        "profession": profession,
        "referred_frequency": frequency,
        "motivation_level": motivation,
        "preferred_topics": topic or None,
        "weak_skills": weak_skill or None,
        "extra_instructions": instructions,
    }
    quiz_input.update({key: value for key, value in optional.items() if value is not None})
    delivery = delivery_options(webhook, webhook_event, metadata, user_id, idempotency_key)
    _submit_one(
        api_url,
        api_key,
        "quiz.generate",
        quiz_input,
        delivery,
        watch=watch,
        json_output=json_output,
    )


@dataclass
class _Chunk:
    """One ingest job and the file rows it carries."""

    rows: list[SourceRow]
    job: dict[str, Any]

    @property
    def job_id(self) -> str:
        return str(self.job["id"])


def _submit_chunks(api: Client, rows: list[SourceRow], delivery: Delivery) -> list[_Chunk]:
    chunks: list[_Chunk] = []
    try:
        for number, part in enumerate(chunked(rows, RECORDS_PER_JOB), start=1):
            records = {"records": [source.record for source in part]}
            key = f"{delivery.idempotency_key}:{number}" if delivery.idempotency_key else None
            job = delivery.submit(api, "records.ingest", records, key)
            chunks.append(_Chunk(rows=part, job=job.to_dict()))
    except (CliError, ApiError):
        if chunks:
            err_console.print(
                "submitted before the error: " + " ".join(chunk.job_id for chunk in chunks)
            )
        raise
    return chunks


def _job_reason(job: dict[str, Any]) -> str:
    error = job.get("error")
    if isinstance(error, dict):
        return f"job {job.get('status')}: {error.get('message', '')} ({error.get('code', '')})"
    return f"job {job.get('status')}"


def _rejections(chunk: _Chunk) -> list[Rejection]:
    """Rows of a finished chunk that were not stored, mapped back to their file rows."""
    job = chunk.job
    if job.get("status") != "completed":
        reason = _job_reason(job)
        return [Rejection(source=row, reasons=[reason]) for row in chunk.rows]
    result = job.get("result") or {}
    rejected: list[Rejection] = []
    for item in result.get("errors") or []:
        index = item.get("index") if isinstance(item, dict) else None
        if not isinstance(index, int) or not 0 <= index < len(chunk.rows):
            continue
        reasons = [describe_detail(reason) for reason in item.get("errors") or []]
        rejected.append(Rejection(source=chunk.rows[index], reasons=reasons or ["rejected"]))
    return rejected


def _chunk_counts(chunk: _Chunk) -> tuple[int, int]:
    """(processed, failed) for one finished chunk; a job that did not complete stored nothing."""
    job = chunk.job
    if job.get("status") != "completed":
        return 0, len(chunk.rows)
    result = job.get("result") or {}
    processed = int(result.get("processed_records", 0))
    failed = int(result.get("failed_records", len(chunk.rows) - processed))
    return processed, failed


def _summary(chunks: list[_Chunk], rejections: list[Rejection]) -> dict[str, Any]:
    processed = failed = 0
    jobs = []
    for chunk in chunks:
        chunk_processed, chunk_failed = _chunk_counts(chunk)
        processed += chunk_processed
        failed += chunk_failed
        jobs.append(
            {
                "id": chunk.job_id,
                "status": chunk.job.get("status"),
                "first_row": chunk.rows[0].row,
                "last_row": chunk.rows[-1].row,
                "records": len(chunk.rows),
                "processed_records": chunk_processed,
                "failed_records": chunk_failed,
                "error": chunk.job.get("error"),
            }
        )
    return {
        "total_records": sum(len(chunk.rows) for chunk in chunks),
        "processed_records": processed,
        "failed_records": failed,
        "jobs": jobs,
        "errors": [
            {
                "row": item.source.row,
                "line": item.source.line,
                "student_id": item.source.record.get("student_id"),
                "errors": item.reasons,
            }
            for item in sorted(rejections, key=lambda rejection: rejection.source.row)
        ],
    }


def _print_summary(summary: dict[str, Any], console: Console) -> None:
    table = Table(title="ingest summary", show_header=True, header_style="bold")
    table.add_column("job", no_wrap=True)
    table.add_column("rows", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("processed", justify="right")
    table.add_column("failed", justify="right")
    for job in summary["jobs"]:
        table.add_row(
            job["id"],
            f"{job['first_row']}-{job['last_row']}",
            str(job["status"]),
            str(job["processed_records"]),
            str(job["failed_records"]),
        )
    console.print(table)
    console.print(
        f"total {summary['total_records']}  "
        f"processed [green]{summary['processed_records']}[/]  "
        f"failed [red]{summary['failed_records']}[/]"
    )


@submit_app.command("ingest")
@cli_errors
def submit_ingest(
    file: Annotated[
        Path,
        typer.Argument(
            help="Student records: a .csv with a header row, or .jsonl with one object a line.",
            metavar="FILE",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    errors: Annotated[
        Path | None,
        typer.Option(
            "--errors",
            metavar="FILE",
            help="Write rejected rows and reasons here (.csv, else JSON Lines); implies --watch.",
            dir_okay=False,
        ),
    ] = None,
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
    """Ingest student records in jobs of 1000 (kind records.ingest).

    With --idempotency-key K the jobs carry keys K:1, K:2, ..., so resubmitting returns them.
    """
    delivery = delivery_options(webhook, webhook_event, metadata, user_id, idempotency_key)
    rows, ignored = read_records(file)
    if ignored:
        err_console.print(f"[yellow]ignoring columns:[/] {', '.join(ignored)}")
    console = make_console(stderr=json_output)
    with open_client(api_url, api_key) as api:
        chunks = _submit_chunks(api, rows, delivery)
        if not json_output:
            console.print(
                f"submitted {len(rows)} records in {len(chunks)} records.ingest "
                f"job{'s' if len(chunks) != 1 else ''}"
            )
        if not watch and errors is None:
            if json_output:
                print_json({"total_records": len(rows), "jobs": [c.job for c in chunks]})
            else:
                for chunk in chunks:
                    console.print(
                        f"  {chunk.job_id}  rows {chunk.rows[0].row}-{chunk.rows[-1].row}"
                    )
            return
        sizes = {chunk.job_id: len(chunk.rows) for chunk in chunks}
        try:
            finished = watch_jobs(api, sizes, console=console)
        except StoppedWatching:
            err_console.print(stopped_note(list(sizes)))
            raise typer.Exit(int(ExitCode.OK)) from None
    for chunk in chunks:
        chunk.job = finished[chunk.job_id]
    rejections = [item for chunk in chunks for item in _rejections(chunk)]
    summary = _summary(chunks, rejections)
    if errors is not None:
        write_rejections(errors, rejections)
    if json_output:
        print_json(summary)
    else:
        _print_summary(summary, console)
        if errors is not None:
            console.print(f"{len(rejections)} rejected rows written to {errors}")
    all_completed = all(chunk.job.get("status") == "completed" for chunk in chunks)
    raise typer.Exit(int(ExitCode.OK if all_completed else ExitCode.JOB_FAILED))
