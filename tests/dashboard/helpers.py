"""What the dashboard tests share: signing in through the form, reading the page's state."""

from __future__ import annotations

import asyncio
import struct
import time
from pathlib import Path

from playwright.async_api import Locator, Page, expect

KEY_STORAGE = "jobrelay.dashboard.apiKey"
STATUSES = ("queued", "processing", "completed", "failed", "canceled")


async def sign_in(page: Page, api_url: str, key: str) -> None:
    """Open the dashboard and sign in through the form, as an admin would."""
    await page.goto(f"{api_url}/dashboard")
    await page.get_by_test_id("api-key-input").fill(key)
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("jobs-table")).to_be_visible()


async def filter_by_user(page: Page, user_id: int) -> None:
    box = page.get_by_test_id("filter-user")
    await box.fill(str(user_id))
    await box.press("Enter")


def job_row(page: Page, job_id: str) -> Locator:
    return page.locator(f'[data-testid="job-row"][data-job-id="{job_id}"]')


async def row_ids(page: Page) -> list[str]:
    rows = page.get_by_test_id("job-row")
    return [str(await row.get_attribute("data-job-id")) for row in await rows.all()]


async def sample_progress(
    bar: Locator, badge: Locator, *, until: str = "Completed", timeout: float = 40
) -> list[int]:
    """Every distinct value the bar shows, in order, until the badge reads `until`."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await bar.get_attribute("aria-valuenow")
        if value is not None and (not seen or seen[-1] != int(value)):
            seen.append(int(value))
        if (await badge.text_content() or "").strip() == until:
            final = await bar.get_attribute("aria-valuenow")
            if final is not None and seen[-1] != int(final):
                seen.append(int(final))
            return seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"the badge never read {until!r}; progress seen: {seen}")


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header, checking that it is one."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height
