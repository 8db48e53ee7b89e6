"""Workers SIGKILLed while they run jobs: every accepted job still ends, nothing is stored
twice, and a job that kills its worker every time fails after its attempt budget."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import Stack
from tests.reliability.conftest import MakeStack, record_figures
from tests.reliability.invariants import check_jobs, fetch
from tests.reliability.jobs import INGEST_RECORDS, mixed, submit_all, wait_all_terminal
from tests.support.jobs import prompt_input, submit, wait_for_status
from tests.support.peers import serve
from tests.support.processes import Proc, base_env, worker_process

JOBS = 50
KILLS = 10


def _replace_dead_workers(stack: Stack) -> int:
    started = 0
    for index, proc in enumerate(stack.workers):
        if not proc.alive():
            stack.workers[index] = worker_process(base_env(stack.env)).start()
            started += 1
    return started


async def _kill_workers_at_random(stack: Stack, rng: random.Random) -> list[float]:
    """SIGKILL a random worker KILLS times at random moments, restarting it each time."""
    kill_times: list[float] = []
    for _ in range(KILLS):
        await asyncio.sleep(rng.uniform(0.4, 1.6))
        index = rng.randrange(len(stack.workers))
        await asyncio.to_thread(stack.workers[index].kill)
        kill_times.append(time.monotonic())
        stack.workers[index] = worker_process(base_env(stack.env)).start()
    return kill_times


@pytest.mark.timeout(300)
async def test_jobs_survive_workers_killed_at_random(make_stack: MakeStack) -> None:
    stack = await make_stack(
        workers=2,
        generator=True,
        max_attempts="12",
        prompt_step_delay="0.3",
        ingest_delay_per_100="0.3",
        generator_delay="1",
    )
    rng = random.Random(20261123)
    submissions = mixed(JOBS, rng)
    async with httpx.AsyncClient(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.admin_key}"}, timeout=30
    ) as client:
        killing = asyncio.create_task(_kill_workers_at_random(stack, rng))
        await submit_all(client, submissions)
        kill_times = await killing
        accepted = [s for s in submissions if s.status_code == 202]
        assert len(accepted) == JOBS, [s.status_code for s in submissions]
        job_ids = [s.job_id for s in accepted if s.job_id]
        outcome = await wait_all_terminal(client, job_ids, timeout=150)
        finished = time.monotonic()
    assert not outcome.unfinished, outcome.unfinished
    report = await check_jobs(stack.env["JOBRELAY_DATABASE_URL"], job_ids)
    report.assert_clean()
    ingests = [s for s in accepted if s.prefix]
    stored = await fetch(
        stack.env["JOBRELAY_DATABASE_URL"],
        "SELECT split_part(student_id, '-', 1) AS prefix, count(*) AS n FROM students "
        "WHERE split_part(student_id, '-', 1) = ANY($1) GROUP BY 1",
        [s.prefix for s in ingests],
    )
    assert {row["prefix"]: row["n"] for row in stored} == {
        s.prefix: INGEST_RECORDS for s in ingests
    }
    assert report.by_status == {"completed": JOBS}, report.by_status
    record_figures(
        "a_worker_kills",
        {
            "jobs_accepted": len(job_ids),
            "kills": len(kill_times),
            "lost_jobs": 0,
            "duplicates": 0,
            "completed": report.by_status.get("completed", 0),
            "jobs_rerun_after_a_kill": sum(1 for n in report.attempts.values() if n > 1),
            "max_attempts_used": max(report.attempts.values()),
            "seconds_from_last_kill_to_all_terminal": round(finished - kill_times[-1], 1),
        },
    )


def _socket_owner(peer_port: int, server_port: int, pids: list[int]) -> int | None:
    """The pid (among `pids`) holding the client end of the TCP connection from `peer_port` to
    `server_port`."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local = int(fields[1].rsplit(":", 1)[1], 16)
            remote = int(fields[2].rsplit(":", 1)[1], 16)
            if (local, remote) == (peer_port, server_port):
                inode = fields[9]
                break
        if inode:
            break
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            descriptors = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in descriptors:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                continue
    return None


def crashing_model(
    worker_pids: Callable[[], list[int]], killed: list[int], lost: list[int]
) -> Starlette:
    """An OpenAI-compatible endpoint that SIGKILLs the worker process calling it: a job body that
    crashes its worker (out of memory, a segfault in a native library) on every attempt."""

    async def complete(request: Request) -> Response:
        assert request.client is not None
        server_port = request.url.port or 80
        pid = None
        for _ in range(20):
            pid = _socket_owner(request.client.port, server_port, worker_pids())
            if pid is not None:
                break
            await asyncio.sleep(0.05)
        if pid is None:
            lost.append(request.client.port)
            return JSONResponse({"error": {"message": "caller not found"}}, status_code=500)
        killed.append(pid)
        os.killpg(pid, signal.SIGKILL)
        await asyncio.sleep(5)
        return JSONResponse({}, status_code=500)

    return Starlette(routes=[Route("/v1/chat/completions", complete, methods=["POST"])])


@pytest.mark.timeout(180)
async def test_job_that_crashes_its_worker_every_time_fails(make_stack: MakeStack) -> None:
    killed: list[int] = []
    lost: list[int] = []
    holder: list[Stack] = []

    def pids() -> list[int]:
        return [p.pid for p in holder[0].workers if isinstance(p, Proc) and p.alive()]

    with serve(crashing_model(pids, killed, lost)) as model_url:
        stack = await make_stack(
            workers=2, generator=False, llm_base_url=f"{model_url}/v1", max_attempts="3"
        )
        holder.append(stack)
        async with httpx.AsyncClient(
            base_url=stack.api_url,
            headers={"Authorization": f"Bearer {stack.admin_key}"},
            timeout=30,
        ) as client:
            job = await submit(client, "prompt.generate", prompt_input())
            started = ended = time.monotonic()
            while time.monotonic() - started < 90:
                _replace_dead_workers(stack)
                current = (await client.get(f"/v1/jobs/{job['id']}")).json()
                if current["status"] in ("completed", "failed", "canceled"):
                    ended = time.monotonic()
                    break
                await asyncio.sleep(0.2)
            final = await wait_for_status(client, job["id"], timeout=1)
    assert not lost, f"calls whose worker was not found: {lost}"
    assert final["status"] == "failed", final
    assert final["error"]["code"] == "worker_lost"
    assert final["attempts"] == 3
    assert len(killed) == 3 and len(set(killed)) == 3
    report = await check_jobs(stack.env["JOBRELAY_DATABASE_URL"], [job["id"]])
    report.assert_clean()
    record_figures(
        "b_crash_every_attempt",
        {
            "attempts": final["attempts"],
            "workers_crashed": len(killed),
            "seconds_to_failed": round(ended - started, 1),
            "error_code": final["error"]["code"],
        },
    )
