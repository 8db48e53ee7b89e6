"""Rich renderings of what the API returns: jobs, events, questions, the caller.

Renderers take the API's JSON as plain dicts and return rich renderables, so the
commands decide where they go and the same table serves `list`, `show` and `watch`.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

__all__ = [
    "events_table",
    "format_time",
    "job_panel",
    "jobs_table",
    "make_console",
    "me_panel",
    "questions_table",
    "status_text",
]

STATUS_STYLES = {
    "queued": "yellow",
    "processing": "cyan",
    "completed": "green",
    "failed": "red",
    "canceled": "magenta",
}

TERMINAL_STATUSES = frozenset({"completed", "failed", "canceled"})


# Output that is piped or captured is read by programs and wide windows, not an 80-column tty.
_PIPED_WIDTH = 200


def make_console(*, stderr: bool = False) -> Console:
    """A console that does not squeeze tables to 80 columns when the output is not a terminal."""
    console = Console(stderr=stderr)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(stderr=stderr, width=_PIPED_WIDTH)
    return console


def status_text(status: str | None) -> Text:
    value = status or "-"
    return Text(value, style=STATUS_STYLES.get(value, "white"))


def format_time(value: Any) -> str:
    """An ISO timestamp as `YYYY-MM-DD HH:MM:SS`, readable in a table cell."""
    if not value:
        return "-"
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    offset = moment.utcoffset()
    if offset is None:
        suffix = ""
    elif offset.total_seconds() == 0:
        suffix = " UTC"
    else:
        suffix = moment.strftime(" %z")
    return moment.strftime("%Y-%m-%d %H:%M:%S") + suffix


def _duration(value: Any) -> str:
    if value is None:
        return "-"
    try:
        return f"{float(value):.2f}s"
    except (TypeError, ValueError):
        return str(value)


def _compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)


def jobs_table(jobs: list[dict[str, Any]], *, title: str | None = None) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAVY, header_style="bold")
    table.add_column("id", no_wrap=True, min_width=36)
    table.add_column("kind", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("progress", justify="right", no_wrap=True)
    table.add_column("message", overflow="fold")
    table.add_column("user", justify="right")
    table.add_column("created", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    for job in jobs:
        table.add_row(
            str(job.get("id", "")),
            str(job.get("kind", "")),
            status_text(job.get("status")),
            f"{job.get('progress', 0)}%",
            str(job.get("message") or ""),
            str(job.get("user_id", "")),
            format_time(job.get("created_at")),
            _duration(job.get("duration_seconds")),
        )
    return table


def _result_summary(job: dict[str, Any]) -> RenderableType | None:
    """A short form of the results people read most (a prompt, an ingestion's counts, a quiz's
    size), known by their shape; any other result as JSON."""
    result = job.get("result")
    if result is None:
        return None
    if not isinstance(result, dict):
        return Text(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    if {"prompt", "fallback", "model"} <= result.keys():
        lines = Text(str(result.get("prompt", "")))
        note = f"model {result.get('model', '-')}, tokens used {result.get('tokens_used', '-')}"
        if result.get("fallback"):
            note += ", fallback prompt"
        return Group(lines, Text(note, style="dim"))
    if {"total_records", "processed_records", "failed_records"} <= result.keys():
        return Text(
            f"{result.get('processed_records', 0)} processed, "
            f"{result.get('failed_records', 0)} failed of {result.get('total_records', 0)} records"
            f" in {_duration(result.get('duration'))}"
        )
    if "questions" in result and isinstance(result["questions"], list):
        count = result.get("questions_created", len(result.get("questions") or []))
        return Text(f"{count} questions (list them with --questions)")
    return Text(json.dumps(result, indent=2, ensure_ascii=False, default=str))


def job_panel(job: dict[str, Any]) -> Panel:
    """Everything about one job: the fields people look for first, then input and outcome."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("id", str(job.get("id", "")))
    grid.add_row("kind", str(job.get("kind", "")))
    grid.add_row("status", status_text(job.get("status")))
    grid.add_row("progress", f"{job.get('progress', 0)}%")
    grid.add_row("message", str(job.get("message") or "-"))
    grid.add_row("user", str(job.get("user_id", "-")))
    grid.add_row("attempts", str(job.get("attempts", 0)))
    grid.add_row("created", format_time(job.get("created_at")))
    grid.add_row("started", format_time(job.get("started_at")))
    grid.add_row("completed", format_time(job.get("completed_at")))
    grid.add_row("duration", _duration(job.get("duration_seconds")))
    if job.get("external_id"):
        grid.add_row("external id", str(job["external_id"]))
    if job.get("webhook"):
        events = ", ".join(job.get("webhook_events_filter") or [])
        grid.add_row("webhook", f"{job['webhook']} ({events})")
    if job.get("metadata"):
        grid.add_row("metadata", _compact_json(job["metadata"]))
    error = job.get("error")
    if error:
        text = (
            f"{error.get('message', '')} ({error.get('code', '')})"
            if isinstance(error, dict)
            else str(error)
        )
        grid.add_row("error", Text(text, style="red"))
    parts: list[RenderableType] = [grid]
    summary = _result_summary(job)
    if summary is not None:
        parts.append(
            Panel(summary, title="result", title_align="left", box=box.ROUNDED, expand=False)
        )
    return Panel(
        Group(*parts),
        title=f"job {job.get('id', '')}",
        title_align="left",
        border_style=STATUS_STYLES.get(str(job.get("status")), "white"),
        expand=False,
    )


def events_table(events: list[dict[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAVY, header_style="bold")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("at", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("progress", justify="right", no_wrap=True)
    table.add_column("message", overflow="fold", min_width=20)
    table.add_column("data", overflow="fold", style="dim")
    for event in events:
        data = event.get("data")
        table.add_row(
            str(event.get("id", "")),
            format_time(event.get("at")),
            str(event.get("type", "")),
            status_text(event.get("status")),
            f"{event.get('progress', 0)}%",
            str(event.get("message") or ""),
            _compact_json(data) if data else "",
        )
    return table


def questions_table(questions: list[dict[str, Any]]) -> Table:
    """Quiz questions as people read them: the sentence, its options, the answer and why."""
    table = Table(box=box.SIMPLE_HEAVY, header_style="bold", show_lines=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("question", overflow="fold", ratio=3)
    table.add_column("options", overflow="fold", ratio=3)
    table.add_column("answer", justify="center", no_wrap=True)
    table.add_column("explanation", overflow="fold", ratio=3)
    table.add_column("type / difficulty", overflow="fold", ratio=1)
    for number, question in enumerate(questions, start=1):
        options = question.get("options") or {}
        correct = str(question.get("correct_answer") or "")
        option_text = Text()
        if isinstance(options, dict):
            for letter in sorted(options):
                style = "bold green" if letter == correct else ""
                option_text.append(f"{letter}. {options[letter]}\n", style=style)
        option_text.rstrip()
        kind_level = " / ".join(
            str(question[key]) for key in ("type", "difficulty") if question.get(key)
        )
        table.add_row(
            str(question.get("position", number)),
            str(question.get("sentence") or question.get("text") or ""),
            option_text,
            Text(correct, style="bold green"),
            str(question.get("explanation") or ""),
            kind_level,
        )
    return table


def me_panel(me: dict[str, Any]) -> Panel:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("id", str(me.get("id", "")))
    grid.add_row("name", str(me.get("name", "")))
    grid.add_row("role", str(me.get("role", "")))
    grid.add_row("tokens", str(me.get("tokens", "")))
    grid.add_row("subscription expires", format_time(me.get("subscription_expires_at")))
    return Panel(grid, title="me", title_align="left", expand=False)
