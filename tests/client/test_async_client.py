"""`jobrelay.AsyncClient`: the same protocol as `Client`, carried out with asyncio."""

from __future__ import annotations

import uuid

import pytest

import jobrelay
from jobrelay.client import ApiConnectionError, WaitTimeout
from jobrelay.embedded import free_tcp_port
from tests.client.conftest import NewUser, create_user
from tests.client.proxy import ANSWER_503, FORWARD, LOSE_ANSWER, Action, FaultyProxy, Seen
from tests.conftest import Stack

PROMPT = "prompt.generate"


async def test_every_method(slow_stack: Stack) -> None:
    async with jobrelay.AsyncClient(slow_stack.api_url, create_user(slow_stack)) as client:
        job = await client.submit(PROMPT, {"manual_prompt": "async"}, metadata={"a": 1})
        assert job.status == "queued" and job.metadata == {"a": 1}
        with pytest.raises(WaitTimeout):
            await client.wait(job.id, timeout=0.2)
        events = [event async for event in client.events(job.id)]
        stored = [event for event in events if not event.is_output]
        assert [event.progress for event in stored] == [0, 10, 30, 50, 70, 90, 100]
        assert await client.stored_events(job.id) == stored
        done = await client.wait(job.id)
        assert done.status == "completed"
        assert (await client.get(job.id)) == done
        assert (await client.result(job.id)) == done.result

        other = await client.submit(PROMPT, {"manual_prompt": "cancel"})
        assert (await client.cancel(other.id)).status == "canceled"
        assert (await client.retry(other.id)).status == "queued"
        assert (await client.wait(other.id, timeout=30)).status == "completed"

        listed = [item.id async for item in client.list(page_size=1)]
        assert listed == [other.id, job.id]
        page = await client.list_page(limit=1)
        assert [item.id for item in page.items] == [other.id] and page.next_cursor

        assert (await client.me()).role == "user"
        assert (await client.webhook_secret()).startswith("whsec_")


async def test_errors(stack: Stack, new_user: NewUser) -> None:
    async with jobrelay.AsyncClient(stack.api_url, new_user()) as client:
        with pytest.raises(jobrelay.ApiError) as caught:
            await client.get(str(uuid.uuid4()))
        assert caught.value.status == 404 and caught.value.code in str(caught.value)
        with pytest.raises(jobrelay.ApiError) as invalid:
            await client.submit(PROMPT, {})
        assert invalid.value.status == 422 and invalid.value.details
    url = f"http://127.0.0.1:{free_tcp_port()}"
    async with jobrelay.AsyncClient(url, "key", max_retries=1) as nowhere:
        with pytest.raises(ApiConnectionError) as unreachable:
            await nowhere.me()
        assert unreachable.value.status is None


async def test_submit_after_a_lost_answer_makes_one_job(stack: Stack, new_user: NewUser) -> None:
    key = new_user()
    lost = False

    def rule(seen: Seen) -> Action:
        nonlocal lost
        if seen.method == "POST" and not lost:
            lost = True
            return LOSE_ANSWER
        return FORWARD

    proxy = FaultyProxy(stack.api_url, rule=rule)
    with proxy.running():
        async with jobrelay.AsyncClient(proxy.url, key) as client:
            job = await client.submit(PROMPT, {"manual_prompt": "once, async"})
            assert [item.id async for item in client.list()] == [job.id]
    assert len(proxy.requests("POST", "/v1/jobs")) == 2


async def test_wait_and_events_through_cut_streams(slow_stack: Stack) -> None:
    cuts = 0

    def rule(seen: Seen) -> Action:
        nonlocal cuts
        if seen.path.split("?")[0].endswith("/events") and cuts < 3:
            cuts += 1
            return Action("cut_stream", frames=1)
        return FORWARD

    proxy = FaultyProxy(slow_stack.api_url, rule=rule)
    with proxy.running():
        async with jobrelay.AsyncClient(proxy.url, create_user(slow_stack)) as client:
            job = await client.submit(PROMPT, {"manual_prompt": "cut, async"})
            seen = [event async for event in client.events(job.id) if not event.is_output]
            assert seen == await client.stored_events(job.id)
            assert (await client.wait(job.id, timeout=30)).status == "completed"
    assert cuts == 3


async def test_503_then_success(stack: Stack, new_user: NewUser) -> None:
    busy = 0

    def rule(seen: Seen) -> Action:
        nonlocal busy
        busy += 1
        return ANSWER_503 if busy <= 2 else FORWARD

    proxy = FaultyProxy(stack.api_url, rule=rule)
    with proxy.running():
        async with jobrelay.AsyncClient(proxy.url, new_user()) as client:
            assert (await client.me()).role == "user"
    assert len(proxy.requests("GET", "/v1/me")) == 3
