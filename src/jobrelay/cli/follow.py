"""Follow jobs to their end: the SSE event stream first, polling when streaming is not possible.

One job is followed through `GET /v1/jobs/{id}/events` (`text/event-stream`), resuming with
`Last-Event-ID` after a dropped connection; if the stream cannot be used at all (a proxy
that buffers, a non-SSE answer) the job is polled once a second instead. Several jobs (a
chunked ingest) are polled together, which keeps one connection no matter how many jobs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import SSEError, connect_sse
from rich.console import Console
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

from jobrelay.cli.client import ApiClient, ApiError, err_console, job_path, print_json
from jobrelay.cli.exit_codes import ExitCode
from jobrelay.cli.render import TERMINAL_STATUSES, job_panel, make_console

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
# Reconnect attempts to the event stream that bring no new event before polling instead.
_MAX_QUIET_RECONNECTS = 3
_STREAM_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


@dataclass(frozen=True)
class JobUpdate:
    """What a watcher shows: the job's status, progress and step message after an event."""

    job_id: str
    status: str
    progress: int
    message: str


OnUpdate = Callable[[JobUpdate], None]


class StoppedWatching(Exception):
    """The user pressed Ctrl-C: the jobs keep running, only watching stops."""

    def __init__(self, job_ids: list[str]) -> None:
        super().__init__(" ".join(job_ids))
        self.job_ids = job_ids


class _StreamUnusable(Exception):
    """The event stream answered, but not as an event stream."""


def exit_code_for(job: dict[str, Any]) -> ExitCode:
    return ExitCode.OK if job.get("status") == "completed" else ExitCode.JOB_FAILED


def _update_from(job_id: str, payload: dict[str, Any]) -> JobUpdate:
    return JobUpdate(
        job_id=job_id,
        status=str(payload.get("status") or ""),
        progress=int(payload.get("progress") or 0),
        message=str(payload.get("message") or ""),
    )


def _get_job(api: ApiClient, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = api.get_json(job_path(job_id))
    return job


def _stream_events(
    api: ApiClient, job_id: str, last_event_id: int | None
) -> Iterator[dict[str, Any]]:
    """Yield the job's events as they arrive, from just after `last_event_id`."""
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    with connect_sse(
        api.http, "GET", job_path(job_id, "events"), headers=headers, timeout=_STREAM_TIMEOUT
    ) as source:
        response = source.response
        if response.status_code >= 400:
            response.read()
            if response.status_code in (401, 403, 404):
                raise ApiError.from_response(response)
            raise _StreamUnusable(f"HTTP {response.status_code}")
        try:
            for sse in source.iter_sse():
                if not sse.data:
                    continue
                try:
                    event = json.loads(sse.data)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    yield event
        except SSEError as exc:
            raise _StreamUnusable(str(exc)) from exc


def _follow_stream(api: ApiClient, job_id: str, on_update: OnUpdate) -> dict[str, Any] | None:
    """Follow by SSE; the final job, or None when the stream could not carry it to the end."""
    last_event_id: int | None = None
    quiet_reconnects = 0
    while quiet_reconnects < _MAX_QUIET_RECONNECTS:
        received = False
        try:
            for event in _stream_events(api, job_id, last_event_id):
                received = True
                if isinstance(event.get("id"), int):
                    last_event_id = event["id"]
                update = _update_from(job_id, event)
                on_update(update)
                if update.status in TERMINAL_STATUSES:
                    # A retried job replays its earlier ending; only the job itself can tell.
                    job = _get_job(api, job_id)
                    if job.get("status") in TERMINAL_STATUSES:
                        return job
        except _StreamUnusable:
            return None
        except (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError):
            pass
        except httpx.TransportError:
            return None
        job = _get_job(api, job_id)
        if job.get("status") in TERMINAL_STATUSES:
            on_update(_update_from(job_id, job))
            return job
        quiet_reconnects = 0 if received else quiet_reconnects + 1
    return None


def _poll(api: ApiClient, job_id: str, on_update: OnUpdate) -> dict[str, Any]:
    while True:
        job = _get_job(api, job_id)
        on_update(_update_from(job_id, job))
        if job.get("status") in TERMINAL_STATUSES:
            return job
        time.sleep(poll_interval)


def follow_job(api: ApiClient, job_id: str, on_update: OnUpdate) -> dict[str, Any]:
    """Call `on_update` for each change until the job ends; return the final job."""
    job = _follow_stream(api, job_id, on_update)
    return job if job is not None else _poll(api, job_id, on_update)


def follow_jobs(
    api: ApiClient, job_ids: list[str], on_update: OnUpdate
) -> dict[str, dict[str, Any]]:
    """Poll several jobs until all have ended; return the final job for each id."""
    finished: dict[str, dict[str, Any]] = {}
    while True:
        for job_id in job_ids:
            if job_id in finished:
                continue
            job = _get_job(api, job_id)
            on_update(_update_from(job_id, job))
            if job.get("status") in TERMINAL_STATUSES:
                finished[job_id] = job
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


def _watch_hint(job_ids: list[str]) -> None:
    what = f"job {job_ids[0]}" if len(job_ids) == 1 else f"{len(job_ids)} jobs"
    err_console.print(f"[dim]watching {what}; Ctrl-C stops watching, the work goes on[/]")


def watch_job(api: ApiClient, job_id: str, *, console: Console) -> dict[str, Any]:
    """Follow one job with a live progress bar showing the current step.

    Raises `StoppedWatching` on Ctrl-C, leaving the job running.
    """
    job = _get_job(api, job_id)
    if job.get("status") in TERMINAL_STATUSES:
        return job
    try:
        _watch_hint([job_id])
        with _progress_bar(console, counted=False) as progress:
            task = progress.add_task("", total=100)

            def show(update: JobUpdate) -> None:
                label = update.status
                if update.message:
                    label += f" · {escape(update.message)}"
                progress.update(task, completed=update.progress, description=label)

            show(_update_from(job_id, job))
            return follow_job(api, job_id, show)
    except KeyboardInterrupt:
        raise StoppedWatching([job_id]) from None


def watch_jobs(
    api: ApiClient, sizes: dict[str, int], *, console: Console, label: str = "records"
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

            return follow_jobs(api, list(sizes), show)
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


def watch_and_report(api: ApiClient, job_id: str, *, json_output: bool) -> ExitCode:
    """Watch one job to its end, then print it; the exit code says how it ended.

    With `json_output` the bar goes to stderr and stdout holds only the final job.
    Ctrl-C ends the watch with exit 0: the job was not harmed, only left unwatched.
    """
    console = make_console(stderr=json_output)
    try:
        job = watch_job(api, job_id, console=console)
    except StoppedWatching:
        err_console.print(stopped_note([job_id]))
        return ExitCode.OK
    if json_output:
        print_json(job)
    else:
        console.print(job_panel(job))
    return exit_code_for(job)
