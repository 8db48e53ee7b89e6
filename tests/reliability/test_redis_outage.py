"""Redis shut down and started again, empty, with jobs queued, parked and running.

During the outage submissions are refused with `503` and the error shape, quickly (no hang),
while reads keep working; no process is restarted; afterwards every accepted job completes
(the reconciler puts back what Redis lost).
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.quizzes.helpers import QUIZ
from tests.reliability.clients import Probe, admin_and_user, assert_error
from tests.reliability.conftest import MakeStack, record_figures
from tests.reliability.invariants import check_jobs
from tests.reliability.jobs import QUIZ_SIZE, wait_all_terminal
from tests.reliability.servers import PrivateRedis
from tests.support.jobs import prompt_input, submit

BOUND_SECONDS = 10.0  # a refusal must come well before a client would give up


async def _timed_post(client: httpx.AsyncClient, body: dict) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await client.post("/v1/jobs", json=body)
    return response, time.monotonic() - started


@pytest.mark.timeout(240)
async def test_redis_restart_loses_no_job(
    private_redis: PrivateRedis, make_stack: MakeStack
) -> None:
    stack = await make_stack(
        workers=2,
        generator=True,
        redis=private_redis,
        prompt_step_delay="0.6",
        generator_delay="3",
        max_running_per_user="2",
    )
    pids = [p.pid for p in (*stack.workers, stack.api)]
    async with admin_and_user(stack) as (admin, user):
        accepted = [
            (await submit(user, "prompt.generate", prompt_input(f"user {i}")))["id"]
            for i in range(8)
        ]
        accepted += [
            (await submit(admin, "quiz.generate", {**QUIZ, "quiz_size": QUIZ_SIZE}))["id"]
            for _ in range(4)
        ]
        accepted += [
            (await submit(admin, "prompt.generate", prompt_input(f"admin {i}")))["id"]
            for i in range(4)
        ]
        while True:
            listed = (await admin.get("/v1/jobs", params={"status": "processing"})).json()
            if len(listed["items"]) >= 3:
                break
            await asyncio.sleep(0.1)

        probe = Probe(admin, accepted[0])
        probe.start()
        private_redis.stop()
        down_at = time.monotonic()
        refusals = []
        for client, kind_input in (
            (user, prompt_input("during the outage")),
            (admin, prompt_input("admin during the outage")),
        ):
            response, seconds = await _timed_post(
                client, {"kind": "prompt.generate", "input": kind_input}
            )
            assert_error(response, 503, "redis_unavailable")
            assert response.headers.get("retry-after")
            refusals.append(seconds)
        assert max(refusals) < BOUND_SECONDS, refusals
        read = await user.get(f"/v1/jobs/{accepted[0]}")
        assert read.status_code == 200, read.text
        ready = await admin.get("/readyz")
        body = assert_error(ready, 503, "not_ready")
        assert [d["component"] for d in body["error"]["details"]] == ["redis"]
        await asyncio.sleep(max(0.0, 5 - (time.monotonic() - down_at)))

        private_redis.start()
        up_at = time.monotonic()
        outage_seconds = up_at - down_at
        first_accepted_after = None
        for _ in range(100):
            response = await user.post(
                "/v1/jobs", json={"kind": "prompt.generate", "input": prompt_input("after")}
            )
            if response.status_code == 202:
                first_accepted_after = time.monotonic() - up_at
                accepted.append(response.json()["id"])
                break
            assert_error(response, 503)
            await asyncio.sleep(0.1)
        assert first_accepted_after is not None, "submissions never recovered"
        await probe.stop()
        accepted += probe.job_ids
        outcome = await wait_all_terminal(admin, accepted, timeout=120)
        all_done_after = time.monotonic() - up_at
    assert not outcome.unfinished, outcome.unfinished
    probe.assert_only_successes_and_503()
    assert "unexpected error" not in stack.api.log()
    assert [p.pid for p in (*stack.workers, stack.api)] == pids
    dead = [p for p in (*stack.workers, stack.api) if not p.alive()]
    assert not dead, "\n\n".join(f"{p.name} exited:\n{p.log()[-3000:]}" for p in dead)
    report = await check_jobs(stack.env["JOBRELAY_DATABASE_URL"], accepted)
    report.assert_clean()
    assert report.by_status == {"completed": len(accepted)}, report.by_status
    record_figures(
        "c_redis_restart",
        {
            "jobs_accepted": len(accepted),
            "lost_jobs": 0,
            "duplicates": 0,
            "outage_seconds": round(outage_seconds, 1),
            "max_503_seconds": round(max(refusals), 3),
            "seconds_to_first_202_after_restart": round(first_accepted_after, 2),
            "seconds_to_all_completed_after_restart": round(all_done_after, 1),
            "processes_restarted": 0,
            "probe_answers": len(probe.answers),
            "probe_503s": sum(1 for _, status, _ in probe.answers if status == 503),
            "probe_slowest_seconds": round(probe.slowest, 3),
        },
    )
