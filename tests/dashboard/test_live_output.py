"""The job page shows a job's live output growing, in headless Chromium, while a real local
OpenAI-compatible server streams the answer."""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import Page, expect

from tests.conftest import MakeUser, Stack
from tests.dashboard.helpers import sign_in
from tests.prompts.streaming_model import StreamingChatModel
from tests.support.jobs import prompt_input, submit, wait_for_status
from tests.support.peers import serve


async def test_the_job_page_shows_the_output_growing(
    page: Page, spawn_stack: Any, make_user: MakeUser
) -> None:
    words = [f"token{number:02d} " for number in range(39)] + ["done."]
    model = StreamingChatModel(words, pause=0.03, hold_after=15)
    with serve(model.app) as url:
        stack: Stack = await spawn_stack(llm_base_url=f"{url}/v1", llm_model="streamer")
        user = await make_user(tokens=700, on=stack)
        await sign_in(page, stack.api_url, stack.admin_key)
        job = await submit(user.client, "prompt.generate", prompt_input("show it growing"))
        await page.goto(f"{stack.api_url}/dashboard#/jobs/{job['id']}")

        output = page.get_by_test_id("output-text")
        assert await asyncio.to_thread(model.holding.wait, 30)
        held_text = "".join(words[:15]).rstrip()
        await expect(output).to_have_text(held_text)
        header = page.get_by_test_id("job-header")
        await expect(header.get_by_test_id("status-badge")).to_have_text("Processing")
        await expect(page.get_by_test_id("job-output")).to_be_visible()

        model.release()
        lengths = [len(held_text)]
        async with asyncio.timeout(30):
            while (await header.get_by_test_id("status-badge").text_content() or "") != "Completed":
                length = len(await output.text_content() or "")
                if length != lengths[-1]:
                    lengths.append(length)
                await asyncio.sleep(0.02)
        done = await wait_for_status(user.client, job["id"], "completed")

    await expect(output).to_have_text(done["result"]["prompt"])
    assert done["result"]["prompt"] == model.text
    assert lengths == sorted(lengths) and len(lengths) >= 3, f"the text grew: {lengths}"
    # Output is not an event of the timeline.
    events = (
        await user.client.get(
            f"/v1/jobs/{job['id']}/events", headers={"Accept": "application/json"}
        )
    ).json()["items"]
    await expect(page.get_by_test_id("event-item")).to_have_count(len(events))
