"""The client's logic, written once and without I/O.

Every operation is a *program*: a generator that yields instructions (send this request,
open this event stream, read the next event, sleep, hand this value to the caller) and is
resumed with their outcome. What to ask, how to read the answer, when to retry, how to resume
a stream and when to fall back to polling lives here; `Client` and `AsyncClient` only carry
the instructions out with `httpx.Client` or `httpx.AsyncClient`, so both behave the same.

An outcome is a `Reply` (a complete answer or the head of an event stream), a
`ServerSentEvent`, None (the stream ended), or a `Failure` (no answer: the transport error).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeAlias, TypeVar
from urllib.parse import quote

import httpx
from httpx_sse import ServerSentEvent
from pydantic import ValidationError

from jobrelay.client.errors import ApiConnectionError, ApiError, WaitTimeout
from jobrelay.client.models import Event, Job, Kind, Page, User

T = TypeVar("T")
M = TypeVar("M", Job, Page, User)


class Safety(Enum):
    """Which failures a request may be sent again after."""

    # Repeating it cannot do anything twice (reads; a submit, which carries an idempotency
    # key): retried on 503 and on any transport error.
    IDEMPOTENT = "idempotent"
    # Repeating it could act twice or answer differently (cancel, retry, rotate): retried
    # only when the request never left (the connection could not be made).
    UNSENT_ONLY = "unsent_only"


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    params: Mapping[str, str | int] = field(default_factory=dict)
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    safety: Safety = Safety.IDEMPOTENT
    # Codes of a 409 that mean "not yet, try again shortly" for this request.
    retry_conflicts: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Send:
    """Send the request and read the whole answer: outcome `Reply` or `Failure`."""

    request: Request


@dataclass(frozen=True, slots=True)
class OpenStream:
    """Open the request as a stream (closing any open one), waiting at most `read_timeout`
    for each piece: outcome `Reply` (body read only when it is not an event stream) or
    `Failure`."""

    request: Request
    read_timeout: float


@dataclass(frozen=True, slots=True)
class NextEvent:
    """The open stream's next server-sent event: `ServerSentEvent`, None at its end, or
    `Failure` when the connection broke or went quiet past the read timeout."""


@dataclass(frozen=True, slots=True)
class CloseStream:
    """Close the open stream, if any; outcome None."""


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Emit:
    """Hand `value` to the caller of an iterating operation; outcome None."""

    value: Any


Instruction: TypeAlias = Send | OpenStream | NextEvent | CloseStream | Sleep | Emit


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    reason: str
    headers: httpx.Headers
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def is_event_stream(self) -> bool:
        content_type = str(self.headers.get("content-type", ""))
        return content_type.startswith("text/event-stream")


@dataclass(frozen=True, slots=True)
class Failure:
    error: httpx.TransportError

    @property
    def unsent(self) -> bool:
        """The request never reached the server, so sending it again is always safe."""
        return isinstance(self.error, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


Outcome: TypeAlias = Reply | ServerSentEvent | Failure | None
Program: TypeAlias = Generator[Instruction, Outcome, T]
OnUpdate: TypeAlias = Callable[[Job | Event], object]


@dataclass(frozen=True, slots=True)
class Policy:
    """How patient a client is. Delays grow exponentially with jitter, capped."""

    base_url: str
    max_retries: int = 3
    backoff_base: float = 0.25
    backoff_max: float = 4.0
    max_retry_after: float = 60.0
    rate_limit_waits: int = 5
    # An idle event stream gets a keep-alive every 15 s; twice that without one is a dead link.
    stream_read_timeout: float = 35.0
    stream_reconnects: int = 5
    poll_interval: float = 1.0

    def backoff(self, attempt: int) -> float:
        delay: float = min(self.backoff_max, self.backoff_base * 2 ** max(attempt - 1, 0))
        return delay * random.uniform(0.5, 1.0)

    def retry_after(self, reply: Reply, attempt: int) -> float:
        value = reply.headers.get("retry-after")
        try:
            seconds = float(value) if value is not None else self.backoff(attempt)
        except ValueError:
            seconds = self.backoff(attempt)
        return min(max(seconds, 0.05), self.max_retry_after)

    def connection_error(self, failure: Failure) -> ApiConnectionError:
        return ApiConnectionError(
            self.base_url,
            _reason(failure.error),
            timed_out=isinstance(failure.error, httpx.TimeoutException),
        )


def _reason(error: httpx.TransportError) -> str:
    if isinstance(error, httpx.ConnectTimeout):
        return "connection timed out"
    if isinstance(error, httpx.TimeoutException):
        return "request timed out"
    text = str(error) or type(error).__name__
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused"
    if "name or service not known" in lowered or "nodename nor servname" in lowered:
        return "unknown host"
    return text


def job_path(job_id: str, *parts: str) -> str:
    """`/v1/jobs/{id}/...` with the id quoted, so a stray `/` cannot reach another route."""
    return "/".join(["/v1/jobs", quote(str(job_id), safe=""), *parts])


# ---- one request, with the retries it allows ------------------------------------------------


def call(policy: Policy, request: Request) -> Program[Reply]:
    """Send `request` until it gets an answer it should keep; a 4xx/5xx raises `ApiError`.

    A 429 waits for `Retry-After` (nothing was done, so any request may wait); a 503, a
    "try again" 409 and transport errors are retried with backoff as `request.safety` allows.
    """
    retries = 0
    rate_limit_waits = 0
    while True:
        outcome = yield Send(request)
        if isinstance(outcome, Failure):
            may_retry = request.safety is Safety.IDEMPOTENT or outcome.unsent
            if may_retry and retries < policy.max_retries:
                retries += 1
                yield Sleep(policy.backoff(retries))
                continue
            raise policy.connection_error(outcome)
        reply = _reply(outcome)
        if reply.status == 429 and rate_limit_waits < policy.rate_limit_waits:
            rate_limit_waits += 1
            yield Sleep(policy.retry_after(reply, rate_limit_waits))
            continue
        if reply.status < 400:
            return reply
        error = ApiError.from_answer(reply.status, reply.reason, reply.body)
        retryable = (reply.status == 503 and request.safety is Safety.IDEMPOTENT) or (
            reply.status == 409 and error.code in request.retry_conflicts
        )
        if retryable and retries < policy.max_retries:
            retries += 1
            yield Sleep(policy.retry_after(reply, retries))
            continue
        raise error


def _reply(outcome: Outcome) -> Reply:
    if not isinstance(outcome, Reply):
        raise TypeError(f"expected a reply, got {type(outcome).__name__}")
    return outcome


def _parse(model: type[M], reply: Reply) -> M:
    try:
        data = reply.json()
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return model.from_dict(data)
    except (ValueError, ValidationError) as exc:
        raise ApiError(
            reply.status, "invalid_response", f"unexpected answer from the API: {exc}"
        ) from exc


def fetch(policy: Policy, model: type[M], request: Request) -> Program[M]:
    reply = yield from call(policy, request)
    return _parse(model, reply)


def fetch_json(policy: Policy, request: Request) -> Program[Any]:
    reply = yield from call(policy, request)
    try:
        return reply.json()
    except ValueError as exc:
        raise ApiError(reply.status, "invalid_response", "the API's answer is not JSON") from exc


# ---- the operations -------------------------------------------------------------------------


def submit(
    policy: Policy,
    kind: str,
    job_input: Mapping[str, Any],
    *,
    idempotency_key: str | None,
    webhook: str | None,
    webhook_events_filter: Iterable[str] | None,
    metadata: Mapping[str, Any] | None,
    user_id: int | None,
    deadline_seconds: int | None,
) -> Program[Job]:
    """`POST /v1/jobs`, always with an `Idempotency-Key` (a fresh one unless given), so
    sending it again after a lost answer returns the job the first attempt made."""
    body: dict[str, Any] = {"kind": kind, "input": dict(job_input)}
    if webhook is not None:
        body["webhook"] = webhook
    if webhook_events_filter is not None:
        body["webhook_events_filter"] = list(webhook_events_filter)
    if metadata is not None:
        body["metadata"] = dict(metadata)
    if user_id is not None:
        body["user_id"] = user_id
    if deadline_seconds is not None:
        body["deadline_seconds"] = deadline_seconds
    key = idempotency_key or str(uuid.uuid4())
    request = Request(
        "POST",
        "/v1/jobs",
        body=body,
        headers={"Idempotency-Key": key},
        retry_conflicts=frozenset({"idempotency_key_in_flight"}),
    )
    reply = yield from call(policy, request)
    job = _parse(Job, reply)
    # With a key of our own, a replay can only be our retry finding its first attempt's job.
    job._replayed = (
        idempotency_key is not None
        and reply.headers.get("idempotent-replayed", "").lower() == "true"
    )
    return job


def get(policy: Policy, job_id: str) -> Program[Job]:
    return (yield from fetch(policy, Job, Request("GET", job_path(job_id))))


def cancel(policy: Policy, job_id: str) -> Program[Job]:
    request = Request("POST", job_path(job_id, "cancel"), safety=Safety.UNSENT_ONLY)
    return (yield from fetch(policy, Job, request))


def retry(policy: Policy, job_id: str) -> Program[Job]:
    request = Request("POST", job_path(job_id, "retry"), safety=Safety.UNSENT_ONLY)
    return (yield from fetch(policy, Job, request))


def result(policy: Policy, job_id: str) -> Program[dict[str, Any]]:
    data = yield from fetch_json(policy, Request("GET", job_path(job_id, "result")))
    return _object(data)


def list_page(
    policy: Policy,
    *,
    kind: str | None,
    status: str | None,
    user_id: int | None,
    limit: int,
    cursor: str | None,
) -> Program[Page]:
    params: dict[str, str | int] = {"limit": limit}
    for name, value in (("kind", kind), ("status", status), ("user_id", user_id)):
        if value is not None:
            params[name] = value
    if cursor:
        params["cursor"] = cursor
    return (yield from fetch(policy, Page, Request("GET", "/v1/jobs", params=params)))


def iterate_jobs(
    policy: Policy,
    *,
    kind: str | None,
    status: str | None,
    user_id: int | None,
    page_size: int,
) -> Program[None]:
    """Every matching job, newest first, one page at a time."""
    cursor: str | None = None
    while True:
        page = yield from list_page(
            policy, kind=kind, status=status, user_id=user_id, limit=page_size, cursor=cursor
        )
        for job in page.items:
            yield Emit(job)
        if not page.next_cursor or not page.items:
            return
        cursor = page.next_cursor


def kinds(policy: Policy) -> Program[list[Kind]]:
    data = yield from fetch_json(policy, Request("GET", "/v1/kinds"))
    items = data.get("items") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ApiError(200, "invalid_response", "GET /v1/kinds did not answer a list of kinds")
    try:
        return [Kind.from_dict(item) for item in items]
    except ValidationError as exc:
        raise ApiError(200, "invalid_response", f"unexpected kind from the API: {exc}") from exc


def stored_events(policy: Policy, job_id: str, last_event_id: int | None) -> Program[list[Event]]:
    headers = {"Accept": "application/json"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    data = yield from fetch_json(
        policy, Request("GET", job_path(job_id, "events"), headers=headers)
    )
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ApiError(200, "invalid_response", "the event list has no items")
    return [Event.from_dict(item) for item in items]


def me(policy: Policy) -> Program[User]:
    return (yield from fetch(policy, User, Request("GET", "/v1/me")))


def webhook_secret(policy: Policy, *, rotate: bool) -> Program[str]:
    if rotate:
        request = Request("POST", "/v1/me/webhook-secret/rotate", safety=Safety.UNSENT_ONLY)
    else:
        request = Request("GET", "/v1/me/webhook-secret")
    data = _object((yield from fetch_json(policy, request)))
    return str(data.get("secret", ""))


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ApiError(200, "invalid_response", "the API's answer is not a JSON object")
    return data


# ---- the event stream -----------------------------------------------------------------------

# Answers to the stream request that no reconnect or poll would change.
_FINAL_STREAM_STATUSES = frozenset({400, 401, 403, 404, 422})


def _stream_request(job_id: str, last_event_id: int | None) -> Request:
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    return Request("GET", job_path(job_id, "events"), headers=headers)


def decode_event(sse: ServerSentEvent) -> Event | None:
    """The job event a server-sent message carries; None for anything else."""
    if not sse.data:
        return None
    try:
        data = json.loads(sse.data)
    except ValueError:
        return None
    if not isinstance(data, dict) or "type" not in data:
        return None
    # SSE keeps the last `id:` for the frames after it; live output is sent without one and is
    # no stored event, so it never takes that id.
    if data.get("id") is None and data["type"] != "output" and sse.id and sse.id.isdigit():
        data = {**data, "id": int(sse.id)}
    try:
        return Event.from_dict(data)
    except ValidationError:
        return None


def _seen_before(event: Event, last_id: int | None) -> bool:
    """A stored event at or before the last one handed out: a resumed stream may repeat one
    (ids only grow), and a caller must never get an event twice."""
    return (
        not event.is_output and event.id is not None and last_id is not None and event.id <= last_id
    )


class _Stream:
    """What has been read of one open event stream: each new event once, the last stored id."""

    def __init__(self, last_id: int | None) -> None:
        self.last_id = last_id
        self.received = False  # anything at all came, repeats included

    def next_event(self) -> Program[Event | Failure | None]:
        """The next event not handed out before; at the end, None (a clean end) or the Failure."""
        while True:
            item = yield NextEvent()
            if item is None or isinstance(item, Failure):
                return item
            assert isinstance(item, ServerSentEvent)
            event = decode_event(item)
            if event is None:
                continue
            self.received = True
            if _seen_before(event, self.last_id):
                continue
            if event.id is not None:
                self.last_id = event.id
            return event


def events(policy: Policy, job_id: str, last_event_id: int | None) -> Program[None]:
    """Emit the job's events from the SSE stream until the job ends.

    A dropped or silent connection is reopened with `Last-Event-ID` (the id of the last stored
    event seen), so no stored event is lost or repeated; live `output` events have no id, and
    the server starts a new connection with the output so far (offset 0). Gives up with
    `ApiConnectionError` after `stream_reconnects` reconnects in a row that brought nothing.
    """
    last_id = last_event_id
    quiet = 0
    ended = False
    last_failure: Failure | ApiError = Failure(httpx.RemoteProtocolError("no event stream"))
    while True:
        if quiet > policy.stream_reconnects:
            if isinstance(last_failure, ApiError):
                raise last_failure
            raise policy.connection_error(last_failure)
        if quiet:
            yield Sleep(policy.backoff(quiet))
        opened = yield OpenStream(_stream_request(job_id, last_id), policy.stream_read_timeout)
        if isinstance(opened, Failure):
            quiet += 1
            last_failure = opened
            continue
        reply = _reply(opened)
        if reply.status >= 400 or not reply.is_event_stream:
            error = _stream_error(reply)
            if reply.status == 503:
                quiet += 1
                last_failure = error
                continue
            raise error
        stream = _Stream(last_id)
        while True:
            item = yield from stream.next_event()
            if not isinstance(item, Event):
                break
            if not item.is_output:
                ended = item.ends_job
            yield Emit(item)
        last_id, received = stream.last_id, stream.received
        yield CloseStream()
        if item is None and ended:
            return
        if item is None:
            # A clean end with no ending seen: the server ends a stream only once the job is
            # over (e.g. resumed after its last event); anything else is worth a reconnect.
            job = yield from get(policy, job_id)
            if job.done:
                return
        if isinstance(item, Failure):
            last_failure = item
        else:
            last_failure = Failure(httpx.RemoteProtocolError("the event stream ended early"))
        # After the job's last event a fresh request ends at once unless a retry came after it.
        quiet = 0 if received else quiet + 1


def _stream_error(reply: Reply) -> ApiError:
    if reply.status >= 400:
        return ApiError.from_answer(reply.status, reply.reason, reply.body)
    content_type = reply.headers.get("content-type", "none")
    return ApiError(
        reply.status,
        "stream_unavailable",
        f"the events endpoint answered {content_type}, not text/event-stream",
    )


# ---- waiting for the end --------------------------------------------------------------------


class _Clock:
    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout

    def left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def expired(self) -> bool:
        left = self.left()
        return left is not None and left <= 0

    def cap(self, seconds: float) -> float:
        left = self.left()
        return seconds if left is None else max(0.0, min(seconds, left))


def wait(
    policy: Policy, job_id: str, timeout: float | None, on_update: OnUpdate | None
) -> Program[Job]:
    """Return the job once it is terminal, following its event stream.

    Reconnects with `Last-Event-ID` when the stream drops, and polls the job every
    `poll_interval` seconds when a stream cannot be had (a proxy that buffers or answers
    JSON, or a link that keeps dropping). Raises `WaitTimeout` after `timeout` seconds.
    `on_update` sees each streamed `Event`, or each polled `Job` while polling.
    """
    clock = _Clock(timeout)
    job = yield from get(policy, job_id)
    if job.done:
        return job
    streamed = yield from _wait_streaming(policy, job, clock, on_update)
    if streamed is not None:
        return streamed
    return (yield from _wait_polling(policy, job_id, clock, on_update))


# Reconnects that bring no event before `wait` polls instead.
_MAX_QUIET_RECONNECTS = 3


def _wait_streaming(
    policy: Policy, job: Job, clock: _Clock, on_update: OnUpdate | None
) -> Program[Job | None]:
    """The terminal job, or None when the stream cannot carry the job to its end."""
    job_id = job.id
    last_id: int | None = None
    quiet = 0
    while quiet < _MAX_QUIET_RECONNECTS:
        if clock.expired():
            raise WaitTimeout(job, clock.timeout or 0.0)
        if quiet:
            yield Sleep(clock.cap(policy.backoff(quiet)))
        read_timeout = clock.cap(policy.stream_read_timeout) or 0.01
        opened = yield OpenStream(_stream_request(job_id, last_id), read_timeout)
        if isinstance(opened, Failure):
            quiet += 1
            continue
        reply = _reply(opened)
        if reply.status in _FINAL_STREAM_STATUSES:
            raise _stream_error(reply)
        if reply.status == 503:
            quiet += 1
            continue
        if reply.status >= 400 or not reply.is_event_stream:
            yield CloseStream()
            return None
        stream = _Stream(last_id)
        while True:
            item = yield from stream.next_event()
            if not isinstance(item, Event):
                break
            if on_update is not None:
                on_update(item)
            if item.ends_job:
                # A retried job's stream replays its earlier ending; only the job can tell.
                job = yield from get(policy, job_id)
                if job.done:
                    yield CloseStream()
                    return job
        last_id, received = stream.last_id, stream.received
        yield CloseStream()
        job = yield from get(policy, job_id)
        if job.done:
            if on_update is not None:
                on_update(job)
            return job
        quiet = 0 if received else quiet + 1
    return None


def _wait_polling(
    policy: Policy, job_id: str, clock: _Clock, on_update: OnUpdate | None
) -> Program[Job]:
    while True:
        job = yield from get(policy, job_id)
        if on_update is not None:
            on_update(job)
        if job.done:
            return job
        if clock.expired():
            raise WaitTimeout(job, clock.timeout or 0.0)
        yield Sleep(clock.cap(policy.poll_interval))
