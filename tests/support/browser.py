"""Which Chromium the browser tests drive: Playwright's own when installed, else the system's.

With neither, the browser tests are skipped with the reason and the command that installs
one; under `CI=true` a missing browser fails the run instead, so CI cannot pass by skipping.
"""

from __future__ import annotations

import os
import shutil
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
    """Playwright's Chromium, else the system one; neither: skip (fail under CI=true)."""
    own = _playwright_chromium(playwright)
    if own is not None:
        return await playwright.chromium.launch(args=CHROMIUM_ARGS)
    system = system_chromium()
    if system is not None:
        return await playwright.chromium.launch(executable_path=system, args=CHROMIUM_ARGS)
    reason = f"no Chromium for the browser tests; install one with: {INSTALL_COMMAND}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: a missing browser fails the run)", pytrace=False)
    pytest.skip(reason)
