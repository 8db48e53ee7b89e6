"""Which Chromium the browser tests drive: Playwright's own when installed, else the system's.

With neither, Playwright's is installed (`python -m playwright install chromium`, what a
newcomer would run) and used, so a fresh clone needs nothing by hand. Should that install
fail (no network), the browser tests fail with the installer's own message: never skipped.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.async_api import Browser, Playwright

INSTALL_COMMAND = "python -m playwright install chromium"
SYSTEM_CHROMIUMS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def system_chromium() -> str | None:
    for name in SYSTEM_CHROMIUMS:
        found = shutil.which(name)
        if found:
            return found
    return None


def _playwright_chromium(playwright: Playwright) -> str | None:
    try:
        path = playwright.chromium.executable_path
    except Exception:
        return None
    return path if path and Path(path).is_file() else None


async def launch_chromium(playwright: Playwright) -> Browser:
    """Playwright's Chromium, else the system one, else Playwright's installed now."""
    if _playwright_chromium(playwright) is None:
        system = system_chromium()
        if system is not None:
            return await playwright.chromium.launch(executable_path=system, args=CHROMIUM_ARGS)
        await _install_playwright_chromium(playwright)
    return await playwright.chromium.launch(args=CHROMIUM_ARGS)


async def _install_playwright_chromium(playwright: Playwright) -> None:
    """Run the install command; a failed install fails the test with the installer's output."""
    install = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "playwright", "install", "chromium"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if install.returncode != 0 or _playwright_chromium(playwright) is None:
        pytest.fail(
            f"no Chromium for the browser tests, and `{INSTALL_COMMAND}` failed "
            f"(exit {install.returncode}):\n{(install.stdout + install.stderr)[-2000:]}",
            pytrace=False,
        )
