"""`GET /v1/jobs/{id}/events` as a live stream: replay, follow, resume, end after the terminal
event, and events produced by other processes (the worker, a second API process)."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid

import httpx
import pytest

from jobrelay import streaming
from jobrelay.services import Services
from tests.conftest import MakeUser, Stack
from tests.streaming.sse import Frame, frames, read_events
from tests.support.jobs import TERMINAL, prompt_input, submit, wait_for_status
from tests.support.processes import api_process, base_env

PROMPT_STEPS = [0, 10, 30, 50, 70, 90, 100]


def events_of(received: list[Frame]) -> list[dict]:
    return [frame.event for frame in received]


def assert_well_formed(received: list[Frame], job_id: str) -> None:
    ids = [frame.id for frame in received]
    assert ids == sorted(set(ids)), f"ids must strictly increase: {ids}"
    for frame in received:
        assert set(frame.fields) == {"id", "data"}, frame.fields
        event = frame.event
        assert event["id"] == frame.id
        assert event["job_id"] == job_id
        assert set(event) == {"id", "job_id", "type", "status", "progress", "message", "at", "data"}


async def test_stream_replays_then_follows_a_live_job_to_its_end(
    make_user: MakeUser, slow_stack: Stack
) -> None:
    user = await make_user(on=slow_stack)
    job = await submit(user.client, "prompt.generate", prompt_input())
    started = time.monotonic()
    received = await read_events(user.client, job["id"])
    assert time.monotonic() - started > 1.0, "a job of 0.3 s steps cannot end this fast"
    assert_well_formed(received, job["id"])
    events = events_of(received)
    assert events[0]["status"] == "queued" and events[0]["type"] == "status"
    assert events[-1]["status"] == "completed" and events[-1]["progress"] == 100
    assert [e["progress"] for e in events] == PROMPT_STEPS
    assert [e["message"] for e in events][1:] == [
        "Initializing AI generation...",
        "Checking tokens...",
        "Generating enhanced prompt with AI...",
        "Waiting for AI response...",
        "Finalizing...",
        "Prompt generated successfully",
    ]
    stored = await user.client.get(
        f"/v1/jobs/{job['id']}/events", headers={"Accept": "application/json"}
    )
    assert stored.status_code == 200
    assert stored.headers["content-type"].startswith("application/json")
    assert stored.json()["items"] == events


async def test_stream_of_a_finished_job_replays_everything_and_ends(make_user: MakeUser) -> None:
    user = await make_user()
    job = await submit(user.client, "prompt.generate", prompt_input())
    await wait_for_status(user.client, job["id"], "completed")
    received = await read_events(user.client, job["id"], timeout=10)
    assert_well_formed(received, job["id"])
    assert events_of(received)[-1]["status"] == "completed"
    listed = await user.client.get(
        f"/v1/jobs/{job['id']}/events", headers={"Accept": "application/json"}
    )
    assert [e["id"] for e in listed.json()["items"]] == [f.id for f in received]


async def test_stream_resumes_after_last_event_id(make_user: MakeUser, slow_stack: Stack) -> None:
    user = await make_user(on=slow_stack)
    job = await submit(user.client, "prompt.generate", prompt_input())
    first = await read_events(user.client, job["id"], stop_after=3)
    assert [f.event["progress"] for f in first] == [0, 10, 30]
    rest = await read_events(user.client, job["id"], last_event_id=first[-1].id)
    assert rest, "the stream must go on from where the client left"
    assert rest[0].id > first[-1].id
    assert_well_formed(first + rest, job["id"])
    assert [f.event["progress"] for f in first + rest] == PROMPT_STEPS
    assert rest[-1].event["status"] == "completed"

    tail = await read_events(user.client, job["id"], last_event_id=rest[-2].id, timeout=10)
    assert [f.id for f in tail] == [rest[-1].id]


async def test_stream_of_a_retried_job_does_not_end_at_the_earlier_ending(
    make_user: MakeUser, slow_stack: Stack
) -> None:
    user = await make_user(on=slow_stack)
    job = await submit(user.client, "prompt.generate", prompt_input())
    await wait_for_status(user.client, job["id"], "processing")
    assert (await user.client.post(f"/v1/jobs/{job['id']}/cancel")).status_code == 200
    assert (await user.client.post(f"/v1/jobs/{job['id']}/retry")).status_code == 200
    received = await read_events(user.client, job["id"])
    assert_well_formed(received, job["id"])
    statuses = [f.event["status"] for f in received]
    assert "canceled" in statuses
    assert statuses[-1] == "completed", statuses
    assert (await user.client.get(f"/v1/jobs/{job['id']}")).json()["status"] == "completed"


async def test_stream_sees_an_event_made_by_another_api_process(
    make_user: MakeUser, idle_stack: Stack
) -> None:
    """Stream from one API process while a second one cancels the job: the event crosses
    processes through Redis and ends the stream at once (well before the idle re-read)."""
    other = api_process(base_env(idle_stack.env)).start()
    try:
        other.wait_http("/healthz")
        user = await make_user(on=idle_stack)
        job = await submit(user.client, "prompt.generate", prompt_input())
        canceled_at: list[float] = []

        async def cancel_elsewhere() -> None:
            await asyncio.sleep(0.7)
            async with httpx.AsyncClient(
                base_url=other.url or "", headers={"Authorization": f"Bearer {user.key}"}
            ) as elsewhere:
                response = await elsewhere.post(f"/v1/jobs/{job['id']}/cancel")
            assert response.status_code == 200, response.text
            canceled_at.append(time.monotonic())

        canceling = asyncio.create_task(cancel_elsewhere())
        received = await read_events(user.client, job["id"], timeout=20)
        ended_at = time.monotonic()
        await canceling
    finally:
        other.stop()
    assert_well_formed(received, job["id"])
    assert [f.event["status"] for f in received] == ["queued", "canceled"]
    assert received[-1].event["data"] == {"by_user_id": user.id}
    assert ended_at - canceled_at[0] < streaming.RECHECK_SECONDS - 0.3


async def test_stream_sees_events_written_by_the_worker_process(
    make_user: MakeUser, slow_stack: Stack
) -> None:
    """The API process that streams never runs the job: every live event comes from the worker."""
    user = await make_user(on=slow_stack)
    job = await submit(user.client, "prompt.generate", prompt_input())
    async with user.client.stream(
        "GET", f"/v1/jobs/{job['id']}/events", headers={"Accept": "text/event-stream"}
    ) as response:
        arrivals: list[tuple[float, dict]] = []
        async for frame in frames(response.aiter_lines()):
            if frame.comment is None and not frame.is_output:
                arrivals.append((time.monotonic(), frame.event))
    progress = [event["progress"] for _, event in arrivals]
    assert progress == PROMPT_STEPS
    live = arrivals[1:]  # the first (queued) event is replayed; the rest arrive live
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(live)]
    assert max(gaps) < streaming.RECHECK_SECONDS, f"events arrived late: {gaps}"


async def test_keep_alive_comments_while_idle_and_end_on_cancel(
    make_user: MakeUser, idle_stack: Stack, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streaming, "KEEPALIVE_SECONDS", 0.3)
    monkeypatch.setattr(streaming, "RECHECK_SECONDS", 0.1)
    user = await make_user(on=idle_stack)
    job = await submit(user.client, "prompt.generate", prompt_input())
    seen: list[str] = []
    two_keep_alives = asyncio.Event()

    async def follow() -> None:
        async for chunk in streaming.follow(services, uuid.UUID(job["id"]), after_id=0):
            seen.append(chunk)
            if sum(c.startswith(":") for c in seen) >= 2:
                two_keep_alives.set()

    following = asyncio.create_task(follow())
    async with asyncio.timeout(10):
        await two_keep_alives.wait()
    assert seen[0].startswith("id: ")
    assert all(chunk == ": keep-alive\n\n" for chunk in seen[1:])
    assert (await user.client.post(f"/v1/jobs/{job['id']}/cancel")).status_code == 200
    async with asyncio.timeout(10):
        await following
    assert '"status": "canceled"' in seen[-1]


async def test_stream_errors(make_user: MakeUser) -> None:
    owner = await make_user()
    stranger = await make_user()
    job = await submit(owner.client, "prompt.generate", prompt_input())
    hidden = await stranger.client.get(
        f"/v1/jobs/{job['id']}/events", headers={"Accept": "text/event-stream"}
    )
    assert hidden.status_code == 404
    assert hidden.json()["error"]["code"] == "job_not_found"
    bad = await owner.client.get(
        f"/v1/jobs/{job['id']}/events",
        headers={"Accept": "text/event-stream", "Last-Event-ID": "not-a-number"},
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_last_event_id"
    beyond = await owner.client.get(
        f"/v1/jobs/{job['id']}/events",
        headers={"Accept": "text/event-stream", "Last-Event-ID": "10000000000000000000"},
    )
    assert beyond.status_code == 422, beyond.text
    assert beyond.json()["error"]["code"] == "invalid_last_event_id"
    missing = await owner.client.get(
        f"/v1/jobs/{uuid.uuid4()}/events", headers={"Accept": "text/event-stream"}
    )
    assert missing.status_code == 404
    assert TERMINAL  # the helper set the tests wait on
