"""`AsyncClient`: the protocol's programs carried out with an `httpx.AsyncClient`."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
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
from jobrelay.client.sync import JobId, stream_timeout

__all__ = ["AsyncClient"]

T = TypeVar("T")


class _Run:
    """The I/O of one program: at most one open event stream at a time."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.response: httpx.Response | None = None
        self.events: AsyncIterator[Any] | None = None

    async def perform(self, instruction: Instruction) -> Outcome:
        if isinstance(instruction, Send):
            request = instruction.request
            try:
                response = await self.http.request(
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
            return await self.open(instruction)
        if isinstance(instruction, NextEvent):
            if self.events is None:
                return None
            try:
                return await anext(self.events, None)
            except httpx.TransportError as exc:
                return Failure(exc)
        if isinstance(instruction, CloseStream):
            await self.close_stream()
            return None
        if isinstance(instruction, Sleep):
            await asyncio.sleep(instruction.seconds)
            return None
        raise TypeError(f"cannot perform {instruction!r}")

    async def open(self, instruction: OpenStream) -> Outcome:
        await self.close_stream()
        request = instruction.request
        built = self.http.build_request(
            request.method,
            request.path,
            params=dict(request.params),
            headers=dict(request.headers),
            timeout=stream_timeout(self.http.timeout, instruction.read_timeout),
        )
        try:
            response = await self.http.send(built, stream=True)
        except httpx.TransportError as exc:
            return Failure(exc)
        reply = Reply(response.status_code, response.reason_phrase, response.headers)
        if reply.status >= 400 or not reply.is_event_stream:
            try:
                body = await response.aread()
            except httpx.TransportError as exc:
                return Failure(exc)
            finally:
                await response.aclose()
            return Reply(reply.status, reply.reason, reply.headers, body)
        self.response = response
        self.events = EventSource(response).aiter_sse()
        return reply

    async def close_stream(self) -> None:
        events, response = self.events, self.response
        self.events = self.response = None
        if isinstance(events, AsyncGenerator):
            await events.aclose()
        if response is not None:
            await response.aclose()


class AsyncClient:
    """The asyncio client for the jobrelay API: `Client`'s methods, awaited.

    `AsyncClient(base_url=None, api_key=None, *, timeout=30.0, max_retries=3,
    poll_interval=1.0)`; unset `base_url` / `api_key` come from `JOBRELAY_API_URL` /
    `JOBRELAY_API_KEY`. `events()` and `list()` are async iterators (`async for`); the other
    methods are coroutines. Use it as an async context manager, or `await aclose()`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        poll_interval: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
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
        self._http = httpx.AsyncClient(
            base_url=config.base_url,
            headers=config.headers,
            timeout=config.timeout,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncClient(base_url={self.base_url!r})"

    # ---- driving programs ----

    async def _run(self, program: Program[T]) -> T:
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
                    raise RuntimeError("a single-value operation emitted values")
                outcome = await run.perform(instruction)
        finally:
            program.close()
            await run.close_stream()

    async def _iterate(self, program: Program[None]) -> AsyncIterator[Any]:
        run = _Run(self._http)
        outcome: Outcome = None
        try:
            while True:
                try:
                    instruction = program.send(outcome)
                except StopIteration:
                    return
                if isinstance(instruction, Emit):
                    yield instruction.value
                    outcome = None
                else:
                    outcome = await run.perform(instruction)
        finally:
            program.close()
            await run.close_stream()

    # ---- the API (documented on `Client`) ----

    async def submit(
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
        """Submit a job; always with an `Idempotency-Key` (see `Client.submit`)."""
        return await self._run(
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

    async def get(self, id: JobId) -> Job:
        """The job now."""
        return await self._run(protocol.get(self._policy, str(id)))

    async def wait(
        self, id: JobId, timeout: float | None = None, *, on_update: OnUpdate | None = None
    ) -> Job:
        """The job once it is terminal (see `Client.wait`)."""
        return await self._run(protocol.wait(self._policy, str(id), timeout, on_update))

    def events(self, id: JobId, last_event_id: int | None = None) -> AsyncIterator[Event]:
        """`async for event in client.events(id)`: stored then live events (see `Client.events`)."""
        return self._iterate(protocol.events(self._policy, str(id), last_event_id))

    async def cancel(self, id: JobId) -> Job:
        """Cancel a queued or running job."""
        return await self._run(protocol.cancel(self._policy, str(id)))

    async def retry(self, id: JobId) -> Job:
        """Queue a failed or canceled job again."""
        return await self._run(protocol.retry(self._policy, str(id)))

    def list(
        self,
        kind: str | None = None,
        status: str | None = None,
        *,
        user_id: int | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[Job]:
        """`async for job in client.list(...)`: every matching job, newest first."""
        return self._iterate(
            protocol.iterate_jobs(
                self._policy, kind=kind, status=status, user_id=user_id, page_size=page_size
            )
        )

    async def list_page(
        self,
        kind: str | None = None,
        status: str | None = None,
        *,
        user_id: int | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page:
        """One page of jobs; pass `page.next_cursor` as `cursor` for the next."""
        return await self._run(
            protocol.list_page(
                self._policy, kind=kind, status=status, user_id=user_id, limit=limit, cursor=cursor
            )
        )

    async def kinds(self) -> builtins.list[Kind]:
        """The job kinds the service runs."""
        return await self._run(protocol.kinds(self._policy))

    async def result(self, id: JobId) -> dict[str, Any]:
        """The completed job's kind-specific result."""
        return await self._run(protocol.result(self._policy, str(id)))

    async def stored_events(
        self, id: JobId, last_event_id: int | None = None
    ) -> builtins.list[Event]:
        """The job's stored events as a list."""
        return await self._run(protocol.stored_events(self._policy, str(id), last_event_id))

    async def me(self) -> User:
        """The user the API key belongs to."""
        return await self._run(protocol.me(self._policy))

    async def webhook_secret(self, *, rotate: bool = False) -> str:
        """The `whsec_…` secret that signs your webhooks; `rotate=True` replaces it first."""
        return await self._run(protocol.webhook_secret(self._policy, rotate=rotate))
