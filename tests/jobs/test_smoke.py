from __future__ import annotations

from tests.conftest import MakeUser
from tests.support.jobs import prompt_input, submit, wait_for_status


async def test_prompt_job_completes(make_user: MakeUser) -> None:
    user = await make_user(tokens=5000)
    job = await submit(user.client, "prompt.generate", prompt_input())
    assert job["status"] == "queued"
    done = await wait_for_status(user.client, job["id"])
    assert done["status"] == "completed", done
    assert done["progress"] == 100
