"""The browser tests' Chromium: without Playwright's or a system one they are skipped with the
install command, except under CI=true, where the missing browser fails the run."""

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
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    env = {
        "PATH": str(Path(sys.executable).parent),  # no system chromium on it
        "PLAYWRIGHT_BROWSERS_PATH": str(tmp_path / "no-browsers"),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO),
        **({"CI": "true"} if ci else {}),
    }
    env = {**{k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL")}, **env}
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(probe), "-q", "-rs", "-p", "no:cacheprovider",
         "-o", "asyncio_mode=auto", "--rootdir", str(tmp_path)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_no_browser_skips_with_the_install_command(tmp_path: Path) -> None:
    result = _run_without_a_browser(tmp_path, ci=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert INSTALL_COMMAND in result.stdout


def test_no_browser_under_ci_fails(tmp_path: Path) -> None:
    result = _run_without_a_browser(tmp_path, ci=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed" in result.stdout
    assert INSTALL_COMMAND in result.stdout and "CI=true" in result.stdout
