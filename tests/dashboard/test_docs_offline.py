"""Swagger UI is served by jobrelay itself: with every request that leaves loopback blocked (as
where no CDN is reachable), /docs loads and lists the operations."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from playwright.async_api import Page, Route, expect

from tests.conftest import Stack

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


async def _block_off_loopback(page: Page) -> list[str]:
    blocked: list[str] = []

    async def guard(route: Route) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).hostname in LOOPBACK:
            await route.continue_()
        else:
            blocked.append(url)
            await route.abort()

    await page.route("**/*", guard)
    return blocked


async def test_swagger_ui_lists_the_operations_without_internet(page: Page, stack: Stack) -> None:
    blocked = await _block_off_loopback(page)
    await page.goto(f"{stack.api_url}/docs")
    operations = page.locator(".opblock")
    await expect(operations.first).to_be_visible()
    await expect(page.locator(".opblock-summary-path", has_text="/v1/jobs").first).to_be_visible()
    assert await operations.count() >= 10
    assert blocked == [], "Swagger UI asked for something off loopback"


async def test_there_is_no_redoc_to_reach_a_cdn(stack: Stack) -> None:
    """ReDoc's bundled script fetches its logo from a CDN, so it is not served."""
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        assert (await http.get("/redoc")).status_code == 404
