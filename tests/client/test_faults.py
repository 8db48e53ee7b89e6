"""The client through a real TCP proxy that breaks things: answers lost after the API did the
work, 503s, event streams cut in the middle of a frame, a stream that is not a stream."""

from __future__ import annotations

import pytest

import jobrelay
from jobrelay.client import ApiConnectionError
from tests.client.conftest import NewUser, create_user
from tests.client.proxy import ANSWER_503, FORWARD, LOSE_ANSWER, Action, FaultyProxy, Rule, Seen
from tests.conftest import Stack

PROMPT = "prompt.generate"


def first(method: str, path_end: str, action: Action, times: int = 1) -> Rule:
    """A rule: `action` for the first `times` requests whose path ends with `path_end`."""
    hits = 0

    def rule(seen: Seen) -> Action:
        nonlocal hits
        if seen.method == method and seen.path.split("?")[0].endswith(path_end):
            hits += 1
            if hits <= times:
                return action
        return FORWARD

    return rule


def test_submit_after_a_lost_answer_makes_one_job(stack: Stack, new_user: NewUser) -> None:
    key = new_user()
    proxy = FaultyProxy(stack.api_url, rule=first("POST", "/v1/jobs", LOSE_ANSWER))
    with proxy.running(), jobrelay.Client(proxy.url, key) as client:
        job = client.submit(PROMPT, {"manual_prompt": "exactly once"})
        posts = proxy.requests("POST", "/v1/jobs")
        assert len(posts) == 2, "the lost answer was retried"
        assert posts[0].headers["idempotency-key"] == posts[1].headers["idempotency-key"]
        assert not job.replayed, "a generated key's replay is the client's own retry"
    with jobrelay.Client(stack.api_url, key) as direct:
        assert [listed.id for listed in direct.list()] == [job.id]


def test_every_submit_carries_a_fresh_key(stack: Stack, new_user: NewUser) -> None:
    proxy = FaultyProxy(stack.api_url)
    with proxy.running(), jobrelay.Client(proxy.url, new_user()) as client:
        client.submit(PROMPT, {"manual_prompt": "one"})
        client.submit(PROMPT, {"manual_prompt": "one"})
        keys = [seen.headers.get("idempotency-key") for seen in proxy.requests("POST", "/v1/jobs")]
        assert len(keys) == 2 and None not in keys and keys[0] != keys[1]


def test_cancel_is_not_sent_twice_after_a_lost_answer(stack: Stack, new_user: NewUser) -> None:
    key = new_user()
    with jobrelay.Client(stack.api_url, key) as direct:
        job = direct.submit(PROMPT, {"manual_prompt": "never mind"})
        direct.wait(job.id, timeout=30)
    proxy = FaultyProxy(stack.api_url, rule=first("POST", "/cancel", LOSE_ANSWER))
    with proxy.running(), jobrelay.Client(proxy.url, key) as client:
        with pytest.raises(ApiConnectionError):
            client.cancel(job.id)
        assert len(proxy.requests("POST", "/cancel")) == 1


def test_503_is_retried_for_reads_and_submit(stack: Stack, new_user: NewUser) -> None:
    key = new_user()
    rule_state = {"get": 0, "post": 0}

    def rule(seen: Seen) -> Action:
        kind = "post" if seen.method == "POST" else "get"
        rule_state[kind] += 1
        return ANSWER_503 if rule_state[kind] <= 2 else FORWARD

    proxy = FaultyProxy(stack.api_url, rule=rule)
    with proxy.running(), jobrelay.Client(proxy.url, key) as client:
        job = client.submit(PROMPT, {"manual_prompt": "busy"})
        assert len(proxy.requests("POST", "/v1/jobs")) == 3
        assert client.get(job.id).id == job.id
        assert len(proxy.requests("GET", f"/v1/jobs/{job.id}")) == 3


def test_503_on_cancel_is_raised_at_once_and_a_lasting_503_after_the_retries(
    stack: Stack, new_user: NewUser
) -> None:
    key = new_user()
    proxy = FaultyProxy(stack.api_url, rule=lambda seen: ANSWER_503)
    with proxy.running(), jobrelay.Client(proxy.url, key, max_retries=2) as client:
        with pytest.raises(jobrelay.ApiError) as canceled:
            client.cancel("00000000-0000-4000-8000-000000000000")
        assert canceled.value.status == 503 and canceled.value.code == "not_ready"
        assert len(proxy.requests("POST", "/cancel")) == 1
        with pytest.raises(jobrelay.ApiError) as read:
            client.me()
        assert read.value.status == 503
        assert "PostgreSQL is down" in str(read.value)
        assert len(proxy.requests("GET", "/v1/me")) == 3


def sse_requests(proxy: FaultyProxy) -> list[Seen]:
    return [
        seen
        for seen in proxy.requests("GET", "/events")
        if seen.headers.get("accept") == "text/event-stream"
    ]


def cut_streams(times: int, frames: int) -> Rule:
    return first("GET", "/events", Action("cut_stream", frames=frames), times=times)


def test_wait_survives_cut_streams(slow_stack: Stack) -> None:
    proxy = FaultyProxy(slow_stack.api_url, rule=cut_streams(times=3, frames=1))
    with proxy.running(), jobrelay.Client(proxy.url, create_user(slow_stack)) as client:
        job = client.submit(PROMPT, {"manual_prompt": "cut me"})
        updates: list[jobrelay.Job | jobrelay.Event] = []
        done = client.wait(job.id, timeout=60, on_update=updates.append)
        assert done.status == "completed"
        streams = sse_requests(proxy)
        # Each cut stream brings one event: three cuts happen before the job's fourth event.
        assert len(streams) >= 3
        assert "last-event-id" not in streams[0].headers
        resumed = [int(seen.headers["last-event-id"]) for seen in streams[1:]]
        assert resumed == sorted(set(resumed)) and resumed[0] > 0
        ids = [u.id for u in updates if isinstance(u, jobrelay.Event) and u.id is not None]
        assert ids == sorted(set(ids)), "no event twice"
        stored = [event.id for event in client.stored_events(job.id)]
        assert ids == stored[: len(ids)], "none skipped"


def test_events_resume_with_last_event_id(slow_stack: Stack) -> None:
    proxy = FaultyProxy(slow_stack.api_url, rule=cut_streams(times=4, frames=1))
    with proxy.running(), jobrelay.Client(proxy.url, create_user(slow_stack)) as client:
        job = client.submit(PROMPT, {"manual_prompt": "resume me"})
        seen = [event for event in client.events(job.id) if not event.is_output]
        stored = client.stored_events(job.id)
        assert [event.id for event in seen] == [event.id for event in stored]
        assert seen == stored
        assert seen[-1].status == "completed"
        streams = sse_requests(proxy)
        assert len(streams) >= 5
        assert all("last-event-id" in s.headers for s in streams[1:])


def test_wait_polls_when_no_stream_can_be_had(slow_stack: Stack) -> None:
    def rule(seen: Seen) -> Action:
        return ANSWER_503 if seen.path.split("?")[0].endswith("/events") else FORWARD

    proxy = FaultyProxy(slow_stack.api_url, rule=rule)
    with (
        proxy.running(),
        jobrelay.Client(
            proxy.url, create_user(slow_stack), poll_interval=0.2, max_retries=0
        ) as client,
    ):
        job = client.submit(PROMPT, {"manual_prompt": "poll me"})
        polled: list[jobrelay.Job | jobrelay.Event] = []
        done = client.wait(job.id, timeout=60, on_update=polled.append)
        assert done.status == "completed"
        assert polled and all(isinstance(update, jobrelay.Job) for update in polled)
        assert len(proxy.requests("GET", f"/v1/jobs/{job.id}")) >= 3


def test_events_give_up_when_the_stream_never_comes(stack: Stack, new_user: NewUser) -> None:
    key = new_user()
    with jobrelay.Client(stack.api_url, key) as direct:
        job = direct.submit(PROMPT, {"manual_prompt": "no stream"})
    proxy = FaultyProxy(stack.api_url, rule=lambda seen: ANSWER_503)
    with proxy.running(), jobrelay.Client(proxy.url, key) as client:
        with pytest.raises(jobrelay.ApiError) as caught:
            list(client.events(job.id))
        assert caught.value.status == 503
