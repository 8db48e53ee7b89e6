"""Live output end to end: a real local OpenAI-compatible server streams its answer slowly, the
worker passes it on with `ctx.output`, clients read it through the Python client's `events()`."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import jobrelay
from jobrelay.runtime.output import LiveOutput, OutputCursor, read_snapshot
from jobrelay.runtime.process import runtime_of
from jobrelay.services import Services
from tests.client.proxy import FORWARD, Action, FaultyProxy, Seen
from tests.conftest import MakeUser, Stack
from tests.prompts.streaming_model import StreamingChatModel
from tests.support.peers import serve

PROMPT = "prompt.generate"


def words(count: int) -> list[str]:
    return [f"w{number:02d} " for number in range(count - 1)] + ["end."]


def rebuild(events: list[jobrelay.Event]) -> str:
    """The output as a client puts it together: each piece goes at its offset."""
    text = ""
    for event in events:
        if event.is_output:
            text = text[: event.offset] + event.text
    return text


async def model_stack(spawn_stack: Any, url: str, **settings: str) -> Stack:
    stack: Stack = await spawn_stack(llm_base_url=f"{url}/v1", llm_model="streamer", **settings)
    return stack


async def test_output_arrives_while_the_job_runs(spawn_stack: Any, make_user: MakeUser) -> None:
    model = StreamingChatModel(words(40), pause=0.05)
    with serve(model.app) as url:
        stack = await model_stack(spawn_stack, url)
        user = await make_user(tokens=700, on=stack)
        async with jobrelay.AsyncClient(stack.api_url, user.key) as client:
            job = await client.submit(PROMPT, {"manual_prompt": "stream it"})
            arrivals = [(time.monotonic(), event) async for event in client.events(job.id)]
            done = await client.get(job.id)
    assert model.calls and model.calls[0]["stream"] is True
    outputs = [(at, event) for at, event in arrivals if event.is_output]
    assert len(outputs) >= 5, "the text came in pieces"
    text = ""
    for _, event in outputs:
        assert event.offset == len(text), "in order, none missing"
        text += event.text
    assert done.status == "completed"
    assert done.result is not None
    assert text == done.result["prompt"] == model.text
    assert done.result["fallback"] is False and done.result["tokens_used"] == 700
    assert set(done.result) == {"prompt", "fallback", "tokens_used", "model"}
    first_output, last_output = outputs[0][0], outputs[-1][0]
    ended = next(at for at, event in arrivals if event.status == "completed")
    assert ended - first_output > 1.0, "output arrived while the model was still writing"
    assert last_output <= ended
    span = last_output - first_output
    assert len(outputs) <= span / 0.05 + 3, "coalesced to about 20 events a second"
    stored = [event for _, event in arrivals if not event.is_output]
    assert [event.progress for event in stored] == [0, 10, 30, 50, 70, 90, 100]


async def test_a_client_that_connects_halfway_gets_the_text_so_far(
    spawn_stack: Any, make_user: MakeUser
) -> None:
    model = StreamingChatModel(words(30), pause=0.02, hold_after=12)
    so_far = "".join(model.words[:12]).rstrip()
    with serve(model.app) as url:
        stack = await model_stack(spawn_stack, url)
        user = await make_user(tokens=700, on=stack)
        async with jobrelay.AsyncClient(stack.api_url, user.key) as client:
            job = await client.submit(PROMPT, {"manual_prompt": "halfway"})
            early: list[jobrelay.Event] = []
            caught_up = asyncio.Event()

            async def follow_from_the_start() -> None:
                async for event in client.events(job.id):
                    early.append(event)
                    if rebuild(early) == so_far:
                        caught_up.set()

            first = asyncio.create_task(follow_from_the_start())
            assert await asyncio.to_thread(model.holding.wait, 30)
            async with asyncio.timeout(10):
                await caught_up.wait()

            late: list[jobrelay.Event] = []
            async with jobrelay.AsyncClient(stack.api_url, user.key) as second:
                async for event in second.events(job.id):
                    late.append(event)
                    if event.is_output and len(late) and event.offset == 0:
                        model.release()
            await first
            done = await client.get(job.id)
    late_output = [event for event in late if event.is_output]
    assert late_output[0].offset == 0
    assert late_output[0].text == so_far, "the text so far, in one event"
    assert done.result is not None
    assert rebuild(late) == rebuild(early) == done.result["prompt"] == model.text
    assert [e.id for e in late if not e.is_output] == [e.id for e in early if not e.is_output]


async def test_a_stream_cut_mid_run_resumes_without_losing_status_events(
    spawn_stack: Any, make_user: MakeUser
) -> None:
    model = StreamingChatModel(words(30), pause=0.05)
    cuts = 0

    def rule(seen: Seen) -> Action:
        nonlocal cuts
        if seen.path.split("?")[0].endswith("/events") and cuts < 3:
            cuts += 1
            return Action("cut_stream", frames=4)
        return FORWARD

    with serve(model.app) as url:
        stack = await model_stack(spawn_stack, url, prompt_step_delay="0.2")
        user = await make_user(tokens=700, on=stack)
        proxy = FaultyProxy(stack.api_url, rule=rule)
        with proxy.running():
            async with jobrelay.AsyncClient(proxy.url, user.key) as client:
                job = await client.submit(PROMPT, {"manual_prompt": "cut me off"})
                seen = [event async for event in client.events(job.id)]
                stored = await client.stored_events(job.id)
                done = await client.get(job.id)
    assert cuts == 3
    assert [event for event in seen if not event.is_output] == stored
    assert stored[-1].status == "completed"
    assert done.result is not None
    assert rebuild(seen) == done.result["prompt"] == model.text


async def test_a_retried_model_call_starts_the_output_over(
    spawn_stack: Any, make_user: MakeUser
) -> None:
    model = StreamingChatModel(words(20), pause=0.05, break_first=1)
    with serve(model.app) as url:
        stack = await model_stack(spawn_stack, url)
        user = await make_user(tokens=700, on=stack)
        async with jobrelay.AsyncClient(stack.api_url, user.key) as client:
            job = await client.submit(PROMPT, {"manual_prompt": "again"})
            seen = [event async for event in client.events(job.id)]
            done = await client.get(job.id)
    assert len(model.calls) == 2
    outputs = [event for event in seen if event.is_output]
    restarts = [number for number, event in enumerate(outputs) if number and event.offset == 0]
    assert restarts, "the stream says the output starts over"
    assert outputs[restarts[0] - 1].offset + len(outputs[restarts[0] - 1].text) > 0
    assert done.result is not None and done.result["fallback"] is False
    assert rebuild(seen) == done.result["prompt"] == model.text


async def test_an_endpoint_that_cannot_stream_is_asked_without_it(
    spawn_stack: Any, make_user: MakeUser
) -> None:
    model = StreamingChatModel(words(10), refuse_stream=True)
    with serve(model.app) as url:
        stack = await model_stack(spawn_stack, url)
        user = await make_user(tokens=1400, on=stack)
        async with jobrelay.AsyncClient(stack.api_url, user.key) as client:
            first = await client.submit(PROMPT, {"manual_prompt": "no streaming"})
            seen = [event async for event in client.events(first.id)]
            done = await client.get(first.id)
            assert [call.get("stream") for call in model.calls] == [True, None]
            second = await client.submit(PROMPT, {"manual_prompt": "still none"})
            await client.wait(second.id, timeout=30)
    assert [call.get("stream") for call in model.calls] == [True, None, None]
    assert done.result is not None
    assert done.result == {
        "prompt": model.text,
        "fallback": False,
        "tokens_used": 700,
        "model": "streamer",
    }
    assert [event.text for event in seen if event.is_output] == [model.text]


async def test_the_offline_provider_streams_word_by_word(
    spawn_stack: Any, make_user: MakeUser
) -> None:
    stack: Stack = await spawn_stack(offline_llm_delay="1.0")
    user = await make_user(tokens=700, on=stack)
    async with jobrelay.AsyncClient(stack.api_url, user.key) as client:
        job = await client.submit(PROMPT, {"manual_prompt": "offline words"})
        arrivals = [(time.monotonic(), event) async for event in client.events(job.id)]
        done = await client.get(job.id)
    outputs = [(at, event) for at, event in arrivals if event.is_output]
    assert len(outputs) >= 5
    assert outputs[-1][0] - outputs[0][0] > 0.5
    assert done.result is not None
    assert rebuild([event for _, event in arrivals]) == done.result["prompt"]
    assert "offline words" in done.result["prompt"]


async def test_the_live_copy_is_bounded_and_goes_away(services: Services) -> None:
    job_id = uuid.uuid4()
    send = runtime_of(services).writes.redis
    output = LiveOutput(send, job_id, 1, max_chars=100, ttl_seconds=60)
    for number in range(50):
        output.append(f"piece {number:03d}\n")
        await output.flush()
    snapshot = await read_snapshot(services.redis, job_id)
    assert snapshot is not None
    assert snapshot.generation == (1, 0)
    assert len(snapshot.text) <= 100
    assert snapshot.end == len(output.text) == 50 * 10
    assert output.text.endswith(snapshot.text)
    cursor = OutputCursor(1)
    assert cursor.from_snapshot(snapshot, 1) == [
        {"type": "output", "data": {"text": snapshot.text, "offset": snapshot.start}}
    ]
    assert cursor.from_snapshot(snapshot, 2) == [], "an earlier attempt's text is not current"

    await output.restart()
    restarted = await read_snapshot(services.redis, job_id)
    assert restarted is not None and restarted.generation == (1, 1) and restarted.text == ""
    assert await output.close() == ""
    await output.end(starting_over=True)
    await output.sent()
    assert await read_snapshot(services.redis, job_id) is None


async def test_a_retried_attempt_starts_the_output_over(
    spawn_stack: Any, make_user: MakeUser
) -> None:
    stack: Stack = await spawn_stack(kinds="tests.prompts.output_kinds")
    user = await make_user(on=stack)
    async with jobrelay.AsyncClient(stack.api_url, user.key) as client:
        job = await client.submit("test.story", {"words": 8})
        seen = [event async for event in client.events(job.id)]
        done = await client.get(job.id)
    assert done.status == "completed" and done.attempts == 2
    second = "".join(f"attempt2-word{number} " for number in range(8))
    assert done.result == {"words": 8, "output": second}, "the full text is in the result"
    outputs = [event for event in seen if event.is_output]
    first_attempt = [event for event in outputs if "attempt1" in event.text]
    assert first_attempt, "the first attempt's output was streamed"
    starts_over = outputs.index(first_attempt[-1]) + 1
    assert outputs[starts_over].offset == 0, "the stream says the output starts over"
    assert "attempt1" not in outputs[starts_over].text
    assert rebuild(seen) == second
