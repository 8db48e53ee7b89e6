"""The browser tests' Chromium: without Playwright's or a system one, Playwright's is installed;
when that install fails, the browser tests fail with the command and the installer's message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.browser import INSTALL_COMMAND

REPO = Path(__file__).resolve().parents[1]
PROBE = """
from playwright.async_api import async_playwright

from tests.support.browser import launch_chromium


async def test_probe():
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        await browser.close()
"""


def _run_without_a_browser(tmp_path: Path, *, ci: bool) -> subprocess.CompletedProcess[str]:
    """The probe with no browser anywhere and Playwright's download host refusing (port 9)."""
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    env = {
        "PATH": str(Path(sys.executable).parent),  # no system chromium on it
        "PLAYWRIGHT_BROWSERS_PATH": str(tmp_path / "no-browsers"),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO),
        "PLAYWRIGHT_DOWNLOAD_HOST": "http://127.0.0.1:9",
        **({"CI": "true"} if ci else {}),
    }
    env = {**{k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL")}, **env}
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(probe), "-q", "-rs", "-p", "no:cacheprovider",
         "-o", "asyncio_mode=auto", "--rootdir", str(tmp_path)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_no_browser_is_installed_and_a_failed_install_fails_the_test(tmp_path: Path) -> None:
    for ci in (False, True):
        result = _run_without_a_browser(tmp_path, ci=ci)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "1 failed" in result.stdout and "skipped" not in result.stdout
        assert INSTALL_COMMAND in result.stdout
        # The installer's own words: it was run, and it tried the download.
        assert "Failed to download" in result.stdout, result.stdout
