"""The Redis primary SIGKILLed under Sentinel while jobs run, streams are open and submissions
keep coming.

The stack is given only the Sentinels' address (`redis+sentinel://…`). After the kill, no
process is restarted; submissions are answered `503` only while no primary answers (the
failover window, measured) and `202` again once Sentinel has promoted the replica; every
accepted job completes exactly once (the reconciler restores enqueues the replica had not
received); the SSE streams opened before the kill carry on over the same connection and get
live events again through pub/sub on the new primary.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.quizzes.helpers import QUIZ
from tests.reliability.clients import admin_and_user, assert_error
from tests.reliability.conftest import MakeStack, record_figures
from tests.reliability.invariants import check_jobs, fetch
from tests.reliability.jobs import QUIZ_SIZE, wait_all_terminal
from tests.reliability.sentinel import SentinelGroup
from tests.streaming.sse import frames
from tests.support.jobs import TERMINAL, prompt_input, submit

WINDOW_BOUND_SECONDS = 20.0  # Sentinel notices after 1 s; a promotion takes a few more
CATCH_UP_SECONDS = 5.0  # from Sentinel's promotion to the last 503 the API may still answer
LIVE_LAG_SECONDS = 0.5  # pub/sub delivers in milliseconds; re-reading PostgreSQL takes ~1 s


@pytest.fixture
def sentinel_group() -> Iterator[SentinelGroup]:
    group = SentinelGroup()
    group.start()
    yield group
    group.stop()


@dataclass
class Stream:
    """One SSE connection, read to its end: each event with the wall-clock time it arrived."""

    job_id: str
    events: list[tuple[dict[str, Any], float]] = field(default_factory=list)
    connections: int = 0

    async def read(self, client: httpx.AsyncClient) -> None:
        headers = {"Accept": "text/event-stream"}
        self.connections += 1
        async with client.stream("GET", f"/v1/jobs/{self.job_id}/events", headers=headers) as r:
            assert r.status_code == 200, await r.aread()
            async for frame in frames(r.aiter_lines()):
                if frame.comment is None and "id" in frame.fields:
                    self.events.append((frame.event, time.time()))


@dataclass
class Submitter:
    """Submits a prompt every 50 ms and notes when each answer came and what it was."""

    client: httpx.AsyncClient
    answers: list[tuple[float, int]] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        turn = 0
        while not self._stop.is_set():
            turn += 1
            body = {"kind": "prompt.generate", "input": prompt_input(f"during failover {turn}")}
            response = await self.client.post("/v1/jobs", json=body)
            if response.status_code == 202:
                self.job_ids.append(response.json()["id"])
            else:
                assert_error(response, 503)
            self.answers.append((time.monotonic(), response.status_code))
            await asyncio.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()


async def _wait_promoted(group: SentinelGroup, old_port: int, timeout: float) -> float:
    """When the Sentinels first named a new primary (monotonic time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await asyncio.to_thread(group.primary_port) != old_port:
                return time.monotonic()
        except Exception:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("Sentinel did not promote the replica")


def _at(event: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(event["at"].replace("Z", "+00:00")).timestamp()


@pytest.mark.timeout(240)
async def test_primary_killed_under_sentinel(
    sentinel_group: SentinelGroup, make_stack: MakeStack
) -> None:
    stack = await make_stack(
        workers=2,
        generator=True,
        redis=sentinel_group,
        prompt_step_delay="1.5",
        generator_delay="8",
        max_running_per_user="50",
        rate_limit_per_minute="100000",
    )
    assert stack.env["JOBRELAY_REDIS_URL"].startswith("redis+sentinel://")
    pids = [p.pid for p in (*stack.workers, stack.api)]
    async with admin_and_user(stack) as (admin, user):
        warm = await submit(user, "prompt.generate", prompt_input("before the failover"))
        warmed = await wait_all_terminal(admin, [warm["id"]], timeout=30)
        assert warmed.statuses == {warm["id"]: "completed"}, warmed.statuses

        accepted = [warm["id"]]
        accepted += [
            (await submit(user, "prompt.generate", prompt_input(f"long {i}")))["id"]
            for i in range(6)
        ]
        accepted += [
            (await submit(admin, "quiz.generate", {**QUIZ, "quiz_size": QUIZ_SIZE}))["id"]
            for _ in range(2)
        ]
        streams = [Stream(job_id) for job_id in accepted[1:]]
        readers = [asyncio.create_task(s.read(admin)) for s in streams]
        while True:
            listed = (await admin.get("/v1/jobs", params={"status": "processing"})).json()
            if len(listed["items"]) >= 4:
                break
            await asyncio.sleep(0.1)

        submitter = Submitter(user)
        submitting = asyncio.create_task(submitter.run())
        await asyncio.sleep(1.0)
        old_port = sentinel_group.primary_port()
        assert sentinel_group.primary is not None
        await asyncio.to_thread(sentinel_group.primary.kill)
        killed_at = time.monotonic()
        killed_wall = time.time()
        promoted_at = await _wait_promoted(sentinel_group, old_port, WINDOW_BOUND_SECONDS)

        while True:
            after = [s for t, s in submitter.answers if t > killed_at]
            if 503 in after and after[-5:] == [202] * 5 and len(after) >= 5:
                break
            assert time.monotonic() - killed_at < WINDOW_BOUND_SECONDS * 2, after
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)
        submitter.stop()
        await submitting
        accepted += submitter.job_ids

        outcome = await wait_all_terminal(admin, accepted, timeout=120)
        async with asyncio.timeout(60):
            await asyncio.gather(*readers)
        stored = {
            s.job_id: (
                await admin.get(
                    f"/v1/jobs/{s.job_id}/events", headers={"Accept": "application/json"}
                )
            ).json()["items"]
            for s in streams
        }
        ready = await admin.get("/readyz")

    assert not outcome.unfinished, outcome.unfinished
    assert ready.status_code == 200, ready.text

    refused = [t for t, s in submitter.answers if s == 503]
    assert refused, "the failover was not seen by submissions"
    assert all(s in (202, 503) for _, s in submitter.answers), submitter.answers
    assert min(refused) >= killed_at, "a 503 before the primary was killed"
    assert max(refused) - killed_at < WINDOW_BOUND_SECONDS
    assert max(refused) - promoted_at < CATCH_UP_SECONDS
    first_202_after = min(t for t, s in submitter.answers if s == 202 and t > max(refused))

    assert [p.pid for p in (*stack.workers, stack.api)] == pids, "a process was restarted"
    assert all(p.alive() for p in (*stack.workers, stack.api))

    report = await check_jobs(stack.env["JOBRELAY_DATABASE_URL"], accepted)
    report.assert_clean()
    assert report.by_status == {"completed": len(accepted)}, report.by_status
    rows = await fetch(
        stack.env["JOBRELAY_DATABASE_URL"],
        "SELECT j.id::text AS id, count(e.id) FILTER (WHERE e.type = 'status' "
        "AND e.status = 'completed') AS completions FROM jobs j "
        "LEFT JOIN job_events e ON e.job_id = j.id GROUP BY j.id",
    )
    assert {r["id"] for r in rows} == set(accepted), "a refused submission was stored"
    assert all(r["completions"] == 1 for r in rows), [dict(r) for r in rows]

    live_lags: list[float] = []
    for stream in streams:
        assert stream.connections == 1
        ids = [event["id"] for event, _ in stream.events]
        assert ids == [e["id"] for e in stored[stream.job_id]], stream.job_id
        assert stream.events[-1][0]["status"] in TERMINAL
        live_lags += [
            received - _at(event)
            for event, received in stream.events
            if _at(event) > killed_wall + (promoted_at - killed_at) + 1.0
        ]
    assert live_lags, "no event was produced after the failover"
    live_lag = statistics.median(live_lags)
    assert live_lag < LIVE_LAG_SECONDS, live_lags

    record_figures(
        "e_redis_sentinel_failover",
        {
            "jobs_accepted": len(accepted),
            "lost_jobs": 0,
            "duplicates": 0,
            "processes_restarted": 0,
            "seconds_kill_to_promotion": round(promoted_at - killed_at, 2),
            "seconds_kill_to_first_503": round(min(refused) - killed_at, 2),
            "seconds_kill_to_last_503": round(max(refused) - killed_at, 2),
            "seconds_kill_to_first_202_after": round(first_202_after - killed_at, 2),
            "submissions_answered": len(submitter.answers),
            "submissions_503": len(refused),
            "sse_streams": len(streams),
            "sse_reconnects": sum(s.connections - 1 for s in streams),
            "events_after_failover": len(live_lags),
            "median_live_lag_after_failover_seconds": round(live_lag, 3),
        },
    )


@pytest.mark.timeout(180)
async def test_a_primary_that_stops_answering_is_failed_over_by_the_worker(
    sentinel_group: SentinelGroup, make_stack: MakeStack
) -> None:
    """SIGSTOP, not SIGKILL: the primary's connections stay open and nothing answers on them.
    The worker's own Redis calls must time out and follow Sentinel to the new primary; without
    socket timeouts its polls would wait on the paused server for good."""
    stack = await make_stack(
        workers=1, redis=sentinel_group, prompt_step_delay="0.2", rate_limit_per_minute="100000"
    )
    worker_pid = stack.workers[0].pid
    async with admin_and_user(stack) as (admin, user):
        warm = await submit(user, "prompt.generate", prompt_input("before the pause"))
        warmed = await wait_all_terminal(admin, [warm["id"]], timeout=30)
        assert warmed.statuses == {warm["id"]: "completed"}, warmed.statuses

        old_port = sentinel_group.primary_port()
        assert sentinel_group.primary is not None
        await asyncio.to_thread(sentinel_group.primary.pause)
        paused_at = time.monotonic()
        await _wait_promoted(sentinel_group, old_port, WINDOW_BOUND_SECONDS)

        accepted: list[str] = []
        while len(accepted) < 5:
            assert time.monotonic() - paused_at < WINDOW_BOUND_SECONDS * 2, accepted
            body = {"kind": "prompt.generate", "input": prompt_input(f"after {len(accepted)}")}
            response = await user.post("/v1/jobs", json=body)
            if response.status_code == 202:
                accepted.append(response.json()["id"])
            else:
                assert_error(response, 503)
                await asyncio.sleep(0.2)
        outcome = await wait_all_terminal(admin, accepted, timeout=60)

    assert not outcome.unfinished, f"the worker did not move to the new primary: {outcome}"
    assert set(outcome.statuses.values()) == {"completed"}, outcome.statuses
    assert stack.workers[0].pid == worker_pid and stack.workers[0].alive()
