"""Follow jobs to their end: one job through `Client.wait` (the SSE event stream, resumed with
`Last-Event-ID` after a dropped connection, polling when no stream can be had), its live output
printed under the progress bar as it arrives; several jobs (a chunked ingest) are polled
together, which keeps one connection no matter how many jobs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from jobrelay.cli.client import err_console, print_json
from jobrelay.cli.exit_codes import ExitCode
from jobrelay.cli.render import TERMINAL_STATUSES, job_panel, make_console
from jobrelay.client import Client, Event, Job

__all__ = [
    "JobUpdate",
    "StoppedWatching",
    "exit_code_for",
    "follow_job",
    "follow_jobs",
    "poll_interval",
    "stopped_note",
    "watch_and_report",
    "watch_job",
    "watch_jobs",
]

# Seconds between polls; module-level so a caller can tune it for a slow link.
poll_interval = 1.0


@dataclass(frozen=True)
class JobUpdate:
    """What a watcher shows: the job's status, progress and step message after an event."""

    job_id: str
    status: str
    progress: int
    message: str


OnUpdate = Callable[[JobUpdate], None]
OnOutput = Callable[[Event], None]


class StoppedWatching(Exception):
    """The user pressed Ctrl-C: the jobs keep running, only watching stops."""

    def __init__(self, job_ids: list[str]) -> None:
        super().__init__(" ".join(job_ids))
        self.job_ids = job_ids


def exit_code_for(job: dict[str, Any]) -> ExitCode:
    return ExitCode.OK if job.get("status") == "completed" else ExitCode.JOB_FAILED


def _update_from(job_id: str, seen: Job | Event) -> JobUpdate:
    return JobUpdate(
        job_id=job_id,
        status=seen.status or "",
        progress=seen.progress or 0,
        message=seen.message or "",
    )


def follow_job(
    client: Client, job_id: str, on_update: OnUpdate, on_output: OnOutput | None = None
) -> dict[str, Any]:
    """Call `on_update` for each change and `on_output` for each piece of live output until
    the job ends; return the final job."""

    def seen(update: Job | Event) -> None:
        if isinstance(update, Event) and update.is_output:
            if on_output is not None:
                on_output(update)
            return
        on_update(_update_from(job_id, update))

    return client.wait(job_id, on_update=seen).to_dict()


def follow_jobs(
    client: Client, job_ids: list[str], on_update: OnUpdate
) -> dict[str, dict[str, Any]]:
    """Poll several jobs until all have ended; return the final job for each id."""
    finished: dict[str, dict[str, Any]] = {}
    while True:
        for job_id in job_ids:
            if job_id in finished:
                continue
            job = client.get(job_id)
            on_update(_update_from(job_id, job))
            if job.done:
                finished[job_id] = job.to_dict()
        if len(finished) == len(job_ids):
            return finished
        time.sleep(poll_interval)


def _progress_bar(console: Console, *, counted: bool) -> Progress:
    columns = [
        SpinnerColumn(finished_text="[green]✓[/]"),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn() if counted else TaskProgressColumn(),
        TimeElapsedColumn(),
    ]
    return Progress(*columns, console=console)


class OutputText:
    """The job's live output as a rich `Text` that grows in place: each piece goes at its
    offset, and an offset before the end (a late join, a retried attempt) starts it over."""

    def __init__(self) -> None:
        self.text = Text()

    def add(self, event: Event) -> None:
        current = self.text.plain
        updated = current[: event.offset] + event.text
        if updated.startswith(current):
            self.text.append(updated[len(current) :])
        else:
            self.text = Text(updated)

    def __rich__(self) -> Text:
        return self.text


def _watch_hint(job_ids: list[str]) -> None:
    what = f"job {job_ids[0]}" if len(job_ids) == 1 else f"{len(job_ids)} jobs"
    err_console.print(f"[dim]watching {what}; Ctrl-C stops watching, the work goes on[/]")


def watch_job(client: Client, job_id: str, *, console: Console) -> dict[str, Any]:
    """Follow one job with a live progress bar showing the current step.

    Raises `StoppedWatching` on Ctrl-C, leaving the job running.
    """
    current = client.get(job_id)
    if current.done:
        return current.to_dict()
    try:
        _watch_hint([job_id])
        progress = _progress_bar(console, counted=False)
        task = progress.add_task("", total=100)
        output = OutputText()
        with Live(Group(progress, output), console=console, refresh_per_second=10):

            def show(update: JobUpdate) -> None:
                label = update.status
                if update.message:
                    label += f" · {escape(update.message)}"
                progress.update(task, completed=update.progress, description=label)

            show(_update_from(job_id, current))
            return follow_job(client, job_id, show, output.add)
    except KeyboardInterrupt:
        raise StoppedWatching([job_id]) from None


def watch_jobs(
    client: Client, sizes: dict[str, int], *, console: Console, label: str = "records"
) -> dict[str, dict[str, Any]]:
    """Follow several jobs with one bar counting their units (`sizes`: job id → units).

    Raises `StoppedWatching` on Ctrl-C, leaving the jobs running.
    """
    done_units: dict[str, float] = dict.fromkeys(sizes, 0.0)
    ended: set[str] = set()
    try:
        _watch_hint(list(sizes))
        with _progress_bar(console, counted=True) as progress:
            task = progress.add_task(
                f"{label}: 0/{len(sizes)} jobs done", total=sum(sizes.values())
            )

            def show(update: JobUpdate) -> None:
                done_units[update.job_id] = sizes[update.job_id] * min(update.progress, 100) / 100
                if update.status in TERMINAL_STATUSES:
                    done_units[update.job_id] = sizes[update.job_id]
                    ended.add(update.job_id)
                progress.update(
                    task,
                    completed=int(sum(done_units.values())),
                    description=f"{label}: {len(ended)}/{len(sizes)} jobs done",
                )

            return follow_jobs(client, list(sizes), show)
    except KeyboardInterrupt:
        raise StoppedWatching(list(sizes)) from None


def stopped_note(job_ids: list[str]) -> str:
    """What Ctrl-C during a watch prints: the work goes on, here is how to find it again."""
    if len(job_ids) == 1:
        return (
            f"stopped watching; job {job_ids[0]} keeps running "
            f"(follow it again with: jobrelay jobs watch {job_ids[0]})"
        )
    return "stopped watching; these jobs keep running: " + " ".join(job_ids)


def watch_and_report(client: Client, job_id: str, *, json_output: bool) -> ExitCode:
    """Watch one job to its end, then print it; the exit code says how it ended.

    With `json_output` the bar goes to stderr and stdout holds only the final job.
    Ctrl-C ends the watch with exit 0: the job was not harmed, only left unwatched.
    """
    console = make_console(stderr=json_output)
    try:
        job = watch_job(client, job_id, console=console)
    except StoppedWatching:
        err_console.print(stopped_note([job_id]))
        return ExitCode.OK
    if json_output:
        print_json(job)
    else:
        console.print(job_panel(job))
    return exit_code_for(job)
