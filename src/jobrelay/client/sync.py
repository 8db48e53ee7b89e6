"""`Client`: the protocol's programs carried out with a blocking `httpx.Client`."""

from __future__ import annotations

import builtins
import time
import uuid
from collections.abc import Generator, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx
from httpx_sse import EventSource

from jobrelay.client import protocol
from jobrelay.client.config import DEFAULT_TIMEOUT, ClientConfig
from jobrelay.client.models import Event, Job, Kind, Page, User
from jobrelay.client.protocol import (
    CloseStream,
    Emit,
    Failure,
    Instruction,
    NextEvent,
    OnUpdate,
    OpenStream,
    Outcome,
    Program,
    Reply,
    Send,
    Sleep,
)

__all__ = ["Client"]

T = TypeVar("T")
JobId = str | uuid.UUID


def stream_timeout(base: httpx.Timeout, read: float) -> httpx.Timeout:
    return httpx.Timeout(connect=base.connect, read=read, write=base.write, pool=base.pool)


class _Run:
    """The I/O of one program: at most one open event stream at a time."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self.response: httpx.Response | None = None
        self.events: Iterator[Any] | None = None

    def perform(self, instruction: Instruction) -> Outcome:
        if isinstance(instruction, Send):
            request = instruction.request
            try:
                response = self.http.request(
                    request.method,
                    request.path,
                    params=dict(request.params),
                    json=request.body,
                    headers=dict(request.headers),
                )
            except httpx.TransportError as exc:
                return Failure(exc)
            return Reply(
                response.status_code, response.reason_phrase, response.headers, response.content
            )
        if isinstance(instruction, OpenStream):
            return self.open(instruction)
        if isinstance(instruction, NextEvent):
            if self.events is None:
                return None
            try:
                return next(self.events, None)
            except httpx.TransportError as exc:
                return Failure(exc)
        if isinstance(instruction, CloseStream):
            self.close_stream()
            return None
        if isinstance(instruction, Sleep):
            time.sleep(instruction.seconds)
            return None
        raise TypeError(f"cannot perform {instruction!r}")

    def open(self, instruction: OpenStream) -> Outcome:
        self.close_stream()
        request = instruction.request
        built = self.http.build_request(
            request.method,
            request.path,
            params=dict(request.params),
            headers=dict(request.headers),
            timeout=stream_timeout(self.http.timeout, instruction.read_timeout),
        )
        try:
            response = self.http.send(built, stream=True)
        except httpx.TransportError as exc:
            return Failure(exc)
        reply = Reply(response.status_code, response.reason_phrase, response.headers)
        if reply.status >= 400 or not reply.is_event_stream:
            try:
                body = response.read()
            except httpx.TransportError as exc:
                return Failure(exc)
            finally:
                response.close()
            return Reply(reply.status, reply.reason, reply.headers, body)
        self.response = response
        self.events = EventSource(response).iter_sse()
        return reply

    def close_stream(self) -> None:
        events, response = self.events, self.response
        self.events = self.response = None
        if isinstance(events, Generator):
            events.close()
        if response is not None:
            response.close()


class Client:
    """A blocking client for the jobrelay API.

    `Client(base_url=None, api_key=None, *, timeout=30.0, max_retries=3, poll_interval=1.0)`;
    unset `base_url` / `api_key` come from `JOBRELAY_API_URL` / `JOBRELAY_API_KEY`
    (`base_url` defaults to http://127.0.0.1:8000). `timeout` bounds each request (a float
    in seconds or an `httpx.Timeout`). Failures raise `jobrelay.ApiError`; see
    `jobrelay.client` for what is retried. Use it as a context manager, or call `close()`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        poll_interval: float = 1.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        config = ClientConfig.resolve(
            base_url,
            api_key,
            timeout=timeout,
            max_retries=max_retries,
            poll_interval=poll_interval,
        )
        self.base_url = config.base_url
        self._policy = config.policy
        self._http = httpx.Client(
            base_url=config.base_url,
            headers=config.headers,
            timeout=config.timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r})"

    # ---- driving programs ----

    def _drive(self, program: Program[T]) -> Generator[Any, None, T]:
        run = _Run(self._http)
        outcome: Outcome = None
        try:
            while True:
                try:
                    instruction = program.send(outcome)
                except StopIteration as stop:
                    value: T = stop.value
                    return value
                if isinstance(instruction, Emit):
                    yield instruction.value
                    outcome = None
                else:
                    outcome = run.perform(instruction)
        finally:
            program.close()
            run.close_stream()

    def _run(self, program: Program[T]) -> T:
        driven = self._drive(program)
        try:
            next(driven)
        except StopIteration as stop:
            value: T = stop.value
            return value
        driven.close()
        raise RuntimeError("a single-value operation emitted values")

    # ---- the API ----

    def submit(
        self,
        kind: str,
        input: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        webhook: str | None = None,
        webhook_events_filter: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        user_id: int | None = None,
        deadline_seconds: int | None = None,
    ) -> Job:
        """Submit a job; returns it (`status` `queued`).

        Every submit carries an `Idempotency-Key` (a new UUID unless you pass one), so when
        the answer is lost the retry returns the job the first attempt made, never a second
        one. Pass your own key to make resubmitting across processes safe too (kept 24 h; the
        same key with a different body raises `ApiError` `idempotency_key_reused`).
        `user_id` (admins) submits on behalf of a user; `deadline_seconds` overrides the
        kind's deadline.
        """
        return self._run(
            protocol.submit(
                self._policy,
                kind,
                input,
                idempotency_key=idempotency_key,
                webhook=webhook,
                webhook_events_filter=webhook_events_filter,
                metadata=metadata,
                user_id=user_id,
                deadline_seconds=deadline_seconds,
            )
        )

    def get(self, id: JobId) -> Job:
        """The job now. Another user's job raises `ApiError` 404 `not_found`."""
        return self._run(protocol.get(self._policy, str(id)))

    def wait(
        self, id: JobId, timeout: float | None = None, *, on_update: OnUpdate | None = None
    ) -> Job:
        """Block until the job is `completed`, `failed` or `canceled`; return it.

        Follows the event stream (reconnecting with `Last-Event-ID` when it drops) and polls
        when no stream can be had. Raises `jobrelay.client.WaitTimeout` (a `TimeoutError`)
        after `timeout` seconds; the job goes on. `on_update` is called with each streamed
        `Event` (output included), or with each polled `Job` while polling.
        """
        return self._run(protocol.wait(self._policy, str(id), timeout, on_update))

    def events(self, id: JobId, last_event_id: int | None = None) -> Iterator[Event]:
        """Iterate over the job's events, live, until it ends.

        Stored events come first (those after `last_event_id` when given), then live ones,
        including `output` events with text as the job writes it. A dropped connection is
        resumed with `Last-Event-ID`, so no stored event is lost or repeated.
        """
        return self._drive(protocol.events(self._policy, str(id), last_event_id))

    def cancel(self, id: JobId) -> Job:
        """Cancel a queued or running job; a finished one raises `ApiError` 409."""
        return self._run(protocol.cancel(self._policy, str(id)))

    def retry(self, id: JobId) -> Job:
        """Queue a failed or canceled job again; others raise `ApiError` 409."""
        return self._run(protocol.retry(self._policy, str(id)))

    def list(
        self,
        kind: str | None = None,
        status: str | None = None,
        *,
        user_id: int | None = None,
        page_size: int = 100,
    ) -> Iterator[Job]:
        """Iterate over jobs, newest first, fetching pages of `page_size` as needed."""
        return self._drive(
            protocol.iterate_jobs(
                self._policy, kind=kind, status=status, user_id=user_id, page_size=page_size
            )
        )

    def list_page(
        self,
        kind: str | None = None,
        status: str | None = None,
        *,
        user_id: int | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page:
        """One page of jobs; pass `page.next_cursor` as `cursor` for the next."""
        return self._run(
            protocol.list_page(
                self._policy, kind=kind, status=status, user_id=user_id, limit=limit, cursor=cursor
            )
        )

    def kinds(self) -> builtins.list[Kind]:
        """The job kinds the service runs, with their queues and input schemas."""
        return self._run(protocol.kinds(self._policy))

    def result(self, id: JobId) -> dict[str, Any]:
        """The completed job's kind-specific result; not completed raises `ApiError` 409."""
        return self._run(protocol.result(self._policy, str(id)))

    def stored_events(self, id: JobId, last_event_id: int | None = None) -> builtins.list[Event]:
        """The job's stored events as a list (no waiting, no output events)."""
        return self._run(protocol.stored_events(self._policy, str(id), last_event_id))

    def me(self) -> User:
        """The user the API key belongs to."""
        return self._run(protocol.me(self._policy))

    def webhook_secret(self, *, rotate: bool = False) -> str:
        """The `whsec_…` secret that signs your webhooks; `rotate=True` replaces it first."""
        return self._run(protocol.webhook_secret(self._policy, rotate=rotate))
