"""The dashboard in a real browser against the real service: sign-in, the job table and its
filters and pages, a job's page with live progress, cancel and retry, the stats header."""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import MakeUser, Stack
from tests.dashboard.helpers import (
    KEY_STORAGE,
    STATUSES,
    filter_by_user,
    job_row,
    png_size,
    row_ids,
    sample_progress,
    sign_in,
)
from tests.quizzes.helpers import QUIZ
from tests.support.jobs import prompt_input, submit, wait_for_status
from tests.support.peers import serve

JSON = {"Accept": "application/json"}


async def test_page_and_static_files_are_served_with_the_right_headers(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        page = await http.get("/dashboard")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-cache"
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert (await http.get("/dashboard/")).text == page.text

        match = re.search(r'src="(/dashboard/static/([0-9a-f]+)/js/main\.js)"', page.text)
        assert match, page.text
        script_url, version = match.groups()
        script = await http.get(script_url)
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        assert "immutable" in script.headers["cache-control"]
        assert script.headers["content-encoding"] == "gzip"
        assert "import" in script.text

        unchanged = await http.get(script_url, headers={"If-None-Match": script.headers["etag"]})
        assert unchanged.status_code == 304

        css = await http.get(f"/dashboard/static/{version}/css/app.css")
        assert css.headers["content-type"].startswith("text/css")

        old_release = await http.get("/dashboard/static/000000000000/js/main.js")
        assert old_release.status_code == 200
        assert old_release.headers["cache-control"] == "no-cache"

        missing = await http.get(f"/dashboard/static/{version}/js/nope.js")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"

        schema = (await http.get("/openapi.json")).json()
        assert not [path for path in schema["paths"] if path.startswith("/dashboard")]


async def test_sign_in_accepts_only_admin_keys_and_remembers_the_key(
    page: Page, stack: Stack, make_user: MakeUser
) -> None:
    await page.goto(f"{stack.api_url}/dashboard")
    form = page.get_by_test_id("login-form")
    key_input = page.get_by_test_id("api-key-input")
    error = page.get_by_test_id("login-error")
    await expect(form).to_be_visible()

    await key_input.fill("jr_not-a-real-key")
    await page.get_by_test_id("login-submit").click()
    await expect(error).to_contain_text("not accepted")

    user = await make_user()
    await key_input.fill(user.key)
    await page.get_by_test_id("login-submit").click()
    await expect(error).to_contain_text("for admins")
    await expect(page.get_by_test_id("jobs-table")).to_have_count(0)
    assert await page.evaluate(f"localStorage.getItem('{KEY_STORAGE}')") is None

    await key_input.fill(stack.admin_key)
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("jobs-table")).to_be_visible()
    await expect(page.get_by_test_id("stats-header")).to_be_visible()
    assert page.url.endswith("#/jobs")

    await page.reload()
    await expect(page.get_by_test_id("jobs-table")).to_be_visible()
    await expect(form).to_have_count(0)

    await page.get_by_test_id("sign-out").click()
    await expect(form).to_be_visible()
    assert await page.evaluate(f"localStorage.getItem('{KEY_STORAGE}')") is None


async def test_a_key_that_stops_working_sends_back_to_sign_in(page: Page, stack: Stack) -> None:
    await sign_in(page, stack.api_url, stack.admin_key)
    await page.evaluate(f"localStorage.setItem('{KEY_STORAGE}', 'jr_revoked-key')")
    await page.reload()
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    await expect(page.get_by_test_id("login-error")).to_contain_text("no longer accepted")
    assert await page.evaluate(f"localStorage.getItem('{KEY_STORAGE}')") is None


async def test_table_lists_a_users_jobs_and_the_status_filter_narrows_it(
    page: Page, stack: Stack, make_user: MakeUser
) -> None:
    user = await make_user(tokens=700)  # one prompt's worth: the second one fails
    done = await submit(user.client, "prompt.generate", prompt_input("first"))
    await wait_for_status(user.client, done["id"], "completed")
    broke = await submit(user.client, "prompt.generate", prompt_input("second"))
    failed = await wait_for_status(user.client, broke["id"], "failed")

    await sign_in(page, stack.api_url, stack.admin_key)
    await filter_by_user(page, user.id)
    rows = page.get_by_test_id("job-row")
    await expect(rows).to_have_count(2)
    assert await row_ids(page) == [broke["id"], done["id"]]  # newest first
    await expect(job_row(page, done["id"]).get_by_test_id("status-badge")).to_have_text("Completed")
    await expect(job_row(page, done["id"]).get_by_test_id("progress-bar")).to_have_attribute(
        "aria-valuenow", "100"
    )
    failed_row = job_row(page, broke["id"])
    await expect(failed_row.get_by_test_id("status-badge")).to_have_text("Failed")
    await expect(failed_row).to_contain_text(failed["error"]["message"])

    await page.get_by_test_id("filter-status").select_option("failed")
    await expect(rows).to_have_count(1)
    assert await row_ids(page) == [broke["id"]]
    assert "status=failed" in page.url and f"user_id={user.id}" in page.url
    await expect(page.get_by_test_id("stat-failed")).to_have_attribute("aria-pressed", "true")

    await page.get_by_test_id("filter-status").select_option("processing")
    await expect(page.get_by_test_id("jobs-empty")).to_contain_text("No jobs match")
    await expect(rows).to_have_count(0)

    await page.get_by_test_id("filter-clear").click()
    await expect(page.get_by_test_id("filter-user")).to_have_value("")
    assert "user_id" not in page.url and "status" not in page.url


async def test_pages_follow_the_cursor_forward_and_back(
    page: Page, stack: Stack, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    submitted = [
        (await submit(client, "prompt.generate", prompt_input(f"page {i}"), user_id=user.id))["id"]
        for i in range(23)
    ]
    await sign_in(page, stack.api_url, stack.admin_key)
    await filter_by_user(page, user.id)
    rows = page.get_by_test_id("job-row")
    await expect(rows).to_have_count(20)
    first_page = await row_ids(page)
    await expect(page.get_by_test_id("page-prev")).to_be_disabled()
    await expect(page.get_by_test_id("page-next")).to_be_enabled()

    await page.get_by_test_id("page-next").click()
    await expect(rows).to_have_count(3)
    await expect(page.get_by_test_id("page-indicator")).to_contain_text("Page 2")
    await expect(page.get_by_test_id("page-next")).to_be_disabled()
    second_page = await row_ids(page)
    assert first_page + second_page == list(reversed(submitted))

    await page.get_by_test_id("page-prev").click()
    await expect(rows).to_have_count(20)
    await expect(page.get_by_test_id("page-indicator")).to_contain_text("Page 1")
    assert await row_ids(page) == first_page


async def test_search_by_id_opens_the_job_page_with_input_result_and_events(
    page: Page, stack: Stack, make_user: MakeUser
) -> None:
    user = await make_user()
    text = "Summarise <img src=x onerror=window.__pwned=1> for me"
    job = await submit(user.client, "prompt.generate", prompt_input(text))
    await wait_for_status(user.client, job["id"], "completed")
    events = (await user.client.get(f"/v1/jobs/{job['id']}/events", headers=JSON)).json()["items"]
    result = (await user.client.get(f"/v1/jobs/{job['id']}/result")).json()

    await sign_in(page, stack.api_url, stack.admin_key)
    search = page.get_by_test_id("search-input")
    await search.fill("not-a-job-id")
    await search.press("Enter")
    await expect(page.get_by_test_id("toast").last).to_contain_text("not a job id")
    assert page.url.endswith("#/jobs")

    await search.fill(f"  {job['id'].upper()} ")
    await search.press("Enter")
    job_page = page.get_by_test_id("job-page")
    await expect(job_page).to_have_attribute("data-job-id", job["id"])
    assert page.url.endswith(f"#/jobs/{job['id']}")

    header = page.get_by_test_id("job-header")
    await expect(header.get_by_test_id("status-badge")).to_have_text("Completed")
    await expect(header.get_by_test_id("job-id")).to_have_text(job["id"])
    await expect(page.get_by_test_id("meta-user")).to_contain_text(f"#{user.id}")
    await expect(page.get_by_test_id("job-input")).to_contain_text(text)
    await expect(page.get_by_test_id("event-item")).to_have_count(len(events))
    await expect(page.get_by_test_id("events-list")).to_contain_text(
        "Prompt generated successfully"
    )
    prompt = page.get_by_test_id("result-prompt")
    await expect(prompt).to_be_visible()
    assert await prompt.text_content() == result["prompt"]
    await expect(page.get_by_test_id("job-callbacks")).to_be_visible()
    await expect(page.get_by_test_id("job-deliveries")).to_be_visible()
    await expect(page.get_by_test_id("cancel-button")).to_be_hidden()
    await expect(page.get_by_test_id("retry-button")).to_be_hidden()

    # Text from the API is text, never markup.
    assert await page.locator("img").count() == 0
    assert await page.evaluate("window.__pwned") is None

    await page.get_by_test_id("back-link").click()
    await expect(page.get_by_test_id("jobs-table")).to_be_visible()


async def test_job_page_shows_callbacks_and_webhook_deliveries(
    page: Page, stack: Stack, make_user: MakeUser
) -> None:
    arrived = threading.Event()  # the receiver runs on its own thread and loop

    async def hook(request: Request) -> Response:
        await request.body()
        arrived.set()
        return Response(status_code=204)

    receiver = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    user = await make_user()
    with serve(receiver) as receiver_url:
        job = await submit(
            user.client, "quiz.generate", {**QUIZ, "quiz_size": 3}, webhook=f"{receiver_url}/hook"
        )
        await wait_for_status(user.client, job["id"], "completed", timeout=40)
        assert await asyncio.to_thread(arrived.wait, 20), "the webhook never arrived"
        deliveries: list[dict[str, Any]] = []
        for _ in range(100):  # the sender records the outcome just after the receiver answers
            response = await user.client.get(f"/v1/jobs/{job['id']}/deliveries")
            deliveries = response.json()["items"]
            if deliveries and deliveries[0]["outcome"] == "delivered":
                break
            await asyncio.sleep(0.1)
        assert [item["outcome"] for item in deliveries] == ["delivered"], deliveries
        callbacks = (await user.client.get(f"/v1/jobs/{job['id']}/callbacks")).json()["items"]
        assert deliveries and callbacks

        await sign_in(page, stack.api_url, stack.admin_key)
        await page.goto(f"{stack.api_url}/dashboard#/jobs/{job['id']}")
        await expect(page.get_by_test_id("job-result")).to_contain_text("Questions created")
        callback_rows = page.get_by_test_id("callback-row")
        await expect(callback_rows).to_have_count(len(callbacks))
        await expect(page.get_by_test_id("callbacks-table")).to_contain_text("applied")
        delivery_rows = page.get_by_test_id("delivery-row")
        await expect(delivery_rows).to_have_count(len(deliveries))
        first = delivery_rows.first
        await expect(first).to_contain_text("delivered")
        await expect(first).to_contain_text(f"{receiver_url}/hook")
        await expect(first).to_contain_text("204")


async def test_an_unknown_job_id_shows_not_found(page: Page, stack: Stack) -> None:
    await sign_in(page, stack.api_url, stack.admin_key)
    await page.goto(f"{stack.api_url}/dashboard#/jobs/{uuid.uuid4()}")
    await expect(page.get_by_test_id("job-not-found")).to_be_visible()


async def test_progress_bars_move_while_a_job_runs(
    page: Page, slow_stack: Stack, make_user: MakeUser
) -> None:
    user = await make_user(on=slow_stack)
    await sign_in(page, slow_stack.api_url, slow_stack.admin_key)
    await filter_by_user(page, user.id)

    # In the table, refreshed by polling.
    in_table = await submit(user.client, "prompt.generate", prompt_input("watch the table"))
    row = job_row(page, in_table["id"])
    seen = await sample_progress(
        row.get_by_test_id("progress-bar"), row.get_by_test_id("status-badge")
    )
    assert seen == sorted(seen), seen
    assert [value for value in seen if 0 < value < 100], seen
    assert seen[-1] == 100

    # On the job page, pushed by the event stream: every step shows up.
    on_page = await submit(user.client, "prompt.generate", prompt_input("watch the page"))
    await page.goto(f"{slow_stack.api_url}/dashboard#/jobs/{on_page['id']}")
    header = page.get_by_test_id("job-header")
    seen = await sample_progress(
        header.get_by_test_id("progress-bar"), header.get_by_test_id("status-badge")
    )
    assert seen == sorted(seen), seen
    assert len([value for value in seen if 0 < value < 100]) >= 3, seen
    assert seen[-1] == 100
    events = (await user.client.get(f"/v1/jobs/{on_page['id']}/events", headers=JSON)).json()
    await expect(page.get_by_test_id("event-item")).to_have_count(len(events["items"]))
    await expect(page.get_by_test_id("result-prompt")).to_be_visible()


async def test_cancel_and_retry_from_the_job_page(
    page: Page, slow_stack: Stack, make_user: MakeUser
) -> None:
    user = await make_user(on=slow_stack)
    job = await submit(user.client, "prompt.generate", prompt_input("cancel me"))
    await wait_for_status(user.client, job["id"], "processing")

    await sign_in(page, slow_stack.api_url, slow_stack.admin_key)
    await page.goto(f"{slow_stack.api_url}/dashboard#/jobs/{job['id']}")
    badge = page.get_by_test_id("job-header").get_by_test_id("status-badge")
    await expect(badge).to_have_text("Processing")

    # Backing out of the dialog changes nothing.
    await page.get_by_test_id("cancel-button").click()
    await page.get_by_test_id("confirm-cancel").click()
    await expect(page.get_by_test_id("confirm-dialog")).to_have_count(0)
    assert (await user.client.get(f"/v1/jobs/{job['id']}")).json()["status"] == "processing"

    await page.get_by_test_id("cancel-button").click()
    await page.get_by_test_id("confirm-ok").click()
    await expect(badge).to_have_text("Canceled")
    await expect(page.get_by_test_id("toast").last).to_contain_text("canceled")
    await expect(page.get_by_test_id("cancel-button")).to_be_hidden()
    assert (await user.client.get(f"/v1/jobs/{job['id']}")).json()["status"] == "canceled"

    await page.get_by_test_id("retry-button").click()
    await expect(page.get_by_test_id("toast").last).to_contain_text("queued again")
    retried = await wait_for_status(user.client, job["id"], "completed", timeout=40)
    assert retried["attempts"] >= 2
    # The page follows the retried attempt to its end by itself.
    await expect(badge).to_have_text("Completed", timeout=20_000)
    await expect(page.get_by_test_id("retry-button")).to_be_hidden()


async def test_header_shows_counts_durations_and_queue_depth(
    page: Page, stack: Stack, client: httpx.AsyncClient
) -> None:
    job = await submit(client, "prompt.generate", prompt_input("for the stats"))
    await wait_for_status(client, job["id"], "completed")
    await sign_in(page, stack.api_url, stack.admin_key)
    header = page.get_by_test_id("stats-header")
    await expect(header).to_be_visible()

    # The header refreshes every few seconds; other work may still be moving the counts.
    deadline = time.monotonic() + 30
    while True:
        response = await client.get("/v1/stats")
        assert response.status_code == 200, response.text
        stats = response.json()
        shown = {
            status: await page.get_by_test_id(f"stat-{status}").get_attribute("data-count")
            for status in STATUSES
        }
        expected = {status: str(stats["by_status"].get(status, 0)) for status in STATUSES}
        if shown == expected or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert shown == expected
    assert int(expected["completed"]) >= 1
    await expect(page.get_by_test_id("stat-queue-depth")).to_have_text(
        re.compile(r"^[\d,.]+[KMB]?$")
    )
    for name in ("p50", "p95"):
        await expect(page.get_by_test_id(f"stat-{name}")).to_have_text(
            re.compile(r"^[\d.]+ (ms|s)$|^\d+ (min|h|d)")
        )

    await page.get_by_test_id("stat-completed").click()
    assert "status=completed" in page.url
    await expect(page.get_by_test_id("filter-status")).to_have_value("completed")
    badges = page.get_by_test_id("job-row").get_by_test_id("status-badge")
    await expect(badges.first).to_have_text("Completed")
    # The unfiltered rows stay on screen until the filtered page arrives.
    for _ in range(100):
        if set(await badges.all_text_contents()) == {"Completed"}:
            break
        await asyncio.sleep(0.1)
    assert set(await badges.all_text_contents()) == {"Completed"}


async def test_screenshot_of_a_busy_dashboard(
    page: Page, slow_stack: Stack, make_user: MakeUser, artifacts: Path
) -> None:
    user = await make_user(on=slow_stack)
    for i in range(3):
        await submit(user.client, "prompt.generate", prompt_input(f"screenshot {i}"))
    running = await submit(user.client, "prompt.generate", prompt_input("screenshot running"))
    await wait_for_status(user.client, running["id"], "processing")

    await sign_in(page, slow_stack.api_url, slow_stack.admin_key)
    await expect(
        page.locator('[data-testid="job-row"][data-status="processing"]').first
    ).to_be_visible()
    await page.wait_for_timeout(600)  # let the progress bars finish their transition
    table_shot = artifacts / "dashboard.png"
    await page.screenshot(path=str(table_shot))
    assert png_size(table_shot) == (1440, 1000)

    await page.goto(f"{slow_stack.api_url}/dashboard#/jobs/{running['id']}")
    await expect(page.get_by_test_id("event-item").first).to_be_visible()
    job_shot = artifacts / "dashboard-job.png"
    await page.screenshot(path=str(job_shot), full_page=True)
    width, height = png_size(job_shot)
    assert width == 1440 and height >= 1000


async def test_event_stream_parser_survives_any_chunking(page: Page, stack: Stack) -> None:
    await page.goto(f"{stack.api_url}/dashboard")
    script_url = await page.locator('script[type="module"]').get_attribute("src")
    assert script_url is not None
    api_url = script_url.replace("/main.js", "/api.js")
    parsed = await page.evaluate(
        """async (url) => {
            const { EventStreamParser } = await import(url);
            const stream = ': keep-alive\\r\\n\\r\\nid: 7\\r\\nevent: progress\\r\\n'
                + 'data: {"id": 7, "progress": 30}\\r\\n\\r\\n'
                + 'id: 8\\ndata: {"id": 8,\\r\\ndata:  "progress": 50}\\n\\n'
                + 'id: 9\\rdata: {"id": 9, "progress": 70}\\r\\r'
                + 'data: {"id": 10, "cut": "off';
            const runs = [];
            for (const size of [1, 2, 3, 7, stream.length]) {
                const seen = [];
                const parser = new EventStreamParser((event, id) => seen.push([id, event]));
                for (let at = 0; at < stream.length; at += size) parser.feed(stream.slice(at, at + size));
                parser.end();
                runs.push(seen);
            }
            return runs;
        }""",
        api_url,
    )
    expected = [
        ["7", {"id": 7, "progress": 30}],
        ["8", {"id": 8, "progress": 50}],
        ["9", {"id": 9, "progress": 70}],
    ]
    assert parsed == [expected] * 5
