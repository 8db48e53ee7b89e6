"""Hypothesis drives a real stack through random interleavings of everything that moves a job:
submissions, the generator's progress, result and failure callbacks (some sent twice, as a
generator retrying a delivery would), cancels, retries, and workers SIGKILLed mid-job.

After every step the stored history must hold the invariants (tests/reliability/invariants.py):
only allowed transitions, progress never down within an attempt, nothing stored twice. No
answer may be a 5xx.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from typing import Any, ClassVar

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from jobrelay import signing
from tests.conftest import Stack
from tests.quizzes.helpers import QUIZ, question
from tests.reliability.conftest import MakeStack, record_figures
from tests.reliability.invariants import check_jobs
from tests.support.processes import base_env, worker_process

QUIZ_SIZE = 4
KILLS_PER_RUN = 2
EXAMPLES = 15
STEPS = 25


class JobLifecycle(RuleBasedStateMachine):
    """One run: a fresh set of jobs on the shared stack; invariants checked after every step."""

    stack: ClassVar[Stack]
    rng: ClassVar[random.Random]
    totals: ClassVar[dict[str, int]] = {}

    jobs = Bundle("jobs")
    sent = Bundle("sent")

    def __init__(self) -> None:
        super().__init__()
        self.http = httpx.Client(
            base_url=self.stack.api_url,
            headers={"Authorization": f"Bearer {self.stack.admin_key}"},
            timeout=30,
        )
        self.job_ids: list[str] = []
        self.kills = 0
        self.secret = self.stack.env["JOBRELAY_GENERATOR_SECRET"]

    def teardown(self) -> None:
        self.http.close()

    def _count(self, name: str) -> None:
        self.totals[name] = self.totals.get(name, 0) + 1

    def _answer(self, response: httpx.Response, allowed: set[int]) -> httpx.Response:
        assert response.status_code < 500, (response.status_code, response.text)
        assert response.status_code in allowed, (response.status_code, response.text)
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"code", "message", "details"}
        return response

    @rule(target=jobs)
    def submit_quiz(self) -> str:
        body = {
            "kind": "quiz.generate",
            "input": {**QUIZ, "quiz_size": QUIZ_SIZE, "extra_instructions": "[gen:silent]"},
        }
        job_id: str = self._answer(self.http.post("/v1/jobs", json=body), {202}).json()["id"]
        self.job_ids.append(job_id)
        self._count("submit")
        return job_id

    @rule(target=jobs)
    def submit_prompt(self) -> str:
        body = {"kind": "prompt.generate", "input": {"manual_prompt": "Explain tides"}}
        job_id: str = self._answer(self.http.post("/v1/jobs", json=body), {202}).json()["id"]
        self.job_ids.append(job_id)
        self._count("submit")
        return job_id

    def _post_callback(self, job_id: str, payload: dict[str, Any], msg_id: str) -> httpx.Response:
        raw = json.dumps(payload).encode()
        headers = signing.sign(self.secret, msg_id, int(time.time()), raw)
        return self.http.post(
            f"/v1/callbacks/{job_id}",
            content=raw,
            headers={"Content-Type": "application/json", **headers},
        )

    def _task_id(self, job_id: str) -> str:
        job = self.http.get(f"/v1/jobs/{job_id}").json()
        return str(job.get("external_id") or job_id)

    @rule(job_id=jobs, progress=st.integers(0, 100))
    def progress_callback(self, job_id: str, progress: int) -> None:
        payload = {"status": "processing", "progress": progress, "message": "Generating"}
        self._answer(
            self._post_callback(job_id, payload, signing.new_message_id()), {200, 404, 409}
        )
        self._count("progress_callback")

    @rule(target=sent, job_id=jobs)
    def result_callback(self, job_id: str) -> tuple[str, dict[str, Any], str]:
        payload = {
            "worker_task_id": self._task_id(job_id),
            "questions": [question(i) for i in range(QUIZ_SIZE)],
            "meta": {"processing_time_sec": 3, "total_processed": QUIZ_SIZE},
        }
        msg_id = signing.new_message_id()
        self._answer(self._post_callback(job_id, payload, msg_id), {201, 404, 409})
        self._count("result_callback")
        return job_id, payload, msg_id

    @rule(target=sent, job_id=jobs)
    def failure_callback(self, job_id: str) -> tuple[str, dict[str, Any], str]:
        payload = {"status": "failed", "error": "GPU out of memory"}
        msg_id = signing.new_message_id()
        self._answer(self._post_callback(job_id, payload, msg_id), {200, 404, 409})
        self._count("failure_callback")
        return job_id, payload, msg_id

    @rule(delivery=sent)
    def duplicate_callback(self, delivery: tuple[str, dict[str, Any], str]) -> None:
        job_id, payload, msg_id = delivery
        self._answer(self._post_callback(job_id, payload, msg_id), {200, 201, 404, 409})
        self._count("duplicate_callback")

    @rule(job_id=jobs)
    def cancel(self, job_id: str) -> None:
        self._answer(self.http.post(f"/v1/jobs/{job_id}/cancel"), {200, 409})
        self._count("cancel")

    @rule(job_id=jobs)
    def retry(self, job_id: str) -> None:
        self._answer(self.http.post(f"/v1/jobs/{job_id}/retry"), {200, 409})
        self._count("retry")

    @rule(seconds=st.sampled_from([0.1, 0.3, 0.6]))
    def let_workers_run(self, seconds: float) -> None:
        """Time passes: hand-offs reach the generator, prompts step on, leases expire."""
        time.sleep(seconds)
        self._count("wait")

    @precondition(lambda self: self.kills < KILLS_PER_RUN)
    @rule()
    def kill_worker(self) -> None:
        workers = self.stack.workers
        index = self.rng.randrange(len(workers))
        workers[index].kill()
        workers[index] = worker_process(base_env(self.stack.env)).start()
        self.kills += 1
        self._count("kill_worker")

    @invariant()
    def history_is_valid(self) -> None:
        if not self.job_ids:
            return
        report = asyncio.run(
            check_jobs(self.stack.env["JOBRELAY_DATABASE_URL"], self.job_ids, require_end=False)
        )
        report.assert_clean()
        self._count("checks")


@pytest.mark.timeout(420)
async def test_random_interleavings_keep_the_invariants(make_stack: MakeStack) -> None:
    stack = await make_stack(workers=2, generator=True, prompt_step_delay="0.3", max_attempts="10")
    JobLifecycle.stack = stack
    JobLifecycle.rng = random.Random(uuid.uuid4().int)
    JobLifecycle.totals = {}
    started = time.monotonic()
    await asyncio.to_thread(
        run_state_machine_as_test,
        JobLifecycle,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
    assert JobLifecycle.totals.get("checks", 0) > EXAMPLES
    record_figures(
        "f_state_machine",
        {
            **JobLifecycle.totals,
            "examples": EXAMPLES,
            "violations": 0,
            "seconds": round(time.monotonic() - started, 1),
        },
    )
