"""Browser fixtures: a headless Chromium driven by Playwright against the real running service,
and a second API + worker whose prompt jobs run slowly enough to watch."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.conftest import Stack, start_stack, stop_stack
from tests.support.browser import launch_chromium

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await launch_chromium(playwright)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh browser profile per test; an uncaught script error fails the test."""
    context = await browser.new_context(viewport={"width": 1440, "height": 1000})
    opened = await context.new_page()
    script_errors: list[str] = []
    opened.on("pageerror", lambda error: script_errors.append(str(error)))
    yield opened
    await context.close()
    assert not script_errors, f"script errors in the dashboard: {script_errors}"


@pytest.fixture(scope="module")
def slow_stack(settings_env: dict[str, str], admin_key: str) -> Iterator[Stack]:
    """API and worker on their own queue, with prompt steps a second apart, so a job stays
    `processing` long enough to watch its progress and cancel it."""
    env = {
        **settings_env,
        "JOBRELAY_PROMPT_STEP_DELAY": "1.0",
        "JOBRELAY_QUEUE_NAME": "jobrelay:dashboard-slow",
    }
    running = start_stack(env, admin_key, generator=False)
    yield running
    stop_stack(running)


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
