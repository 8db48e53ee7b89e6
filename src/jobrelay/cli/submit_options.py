"""The options every `jobrelay submit …` shares: who the job is for and who hears about it
(`--webhook`, `--webhook-event`, `--metadata`, `--idempotency-key`, `--user-id`) and `--watch`."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

import typer

from jobrelay.cli.client import InputError
from jobrelay.client import Client, Job


class WebhookEvent(StrEnum):
    start = "start"
    progress = "progress"
    completed = "completed"


WatchOption = Annotated[
    bool, typer.Option("--watch", "-w", help="Follow the job live until it ends.")
]
WebhookOption = Annotated[
    str | None,
    typer.Option("--webhook", help="URL that receives the job, signed, on its events."),
]
WebhookEventOption = Annotated[
    list[WebhookEvent] | None,
    typer.Option(
        "--webhook-event", help="Event that triggers the webhook (repeatable; default completed)."
    ),
]
MetadataOption = Annotated[
    list[str] | None,
    typer.Option("--metadata", help="KEY=VALUE stored with the job (repeatable)."),
]
IdempotencyOption = Annotated[
    str | None,
    typer.Option("--idempotency-key", help="Resubmitting with the same key returns the same job."),
]
UserIdOption = Annotated[
    int | None, typer.Option("--user-id", help="Submit on behalf of this user (admins).")
]


@dataclass(frozen=True)
class Delivery:
    """The options every submit shares: who the job is for and who hears about it."""

    webhook: str | None = None
    webhook_events: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    user_id: int | None = None
    idempotency_key: str | None = None

    def submit(
        self, client: Client, kind: str, job_input: dict[str, Any], idempotency_key: str | None
    ) -> Job:
        """Submit one job with these options."""
        return client.submit(
            kind,
            job_input,
            idempotency_key=idempotency_key,
            webhook=self.webhook or None,
            webhook_events_filter=self.webhook_events or None,
            metadata=self.metadata or None,
            user_id=self.user_id,
        )


def delivery_options(
    webhook: str | None,
    webhook_events: list[WebhookEvent] | None,
    metadata: list[str] | None,
    user_id: int | None,
    idempotency_key: str | None,
) -> Delivery:
    pairs: dict[str, str] = {}
    for item in metadata or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--metadata {item!r}: expected KEY=VALUE")
        pairs[key.strip()] = value
    return Delivery(
        webhook=webhook,
        webhook_events=[event.value for event in webhook_events or []],
        metadata=pairs,
        user_id=user_id,
        idempotency_key=idempotency_key or None,
    )
