"""examples/caption_kind as a user adds it: `pip install -e examples/caption_kind`, restart,
and its kinds are listed, submitted from the CLI, and run by workers on their queues."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Stack
from tests.kinds.conftest import REPO, start_worker
from tests.support.jobs import submit, wait_for_status
from tests.support.processes import run_cli

EXAMPLE = REPO / "examples" / "caption_kind"
DISTRIBUTION = "jobrelay-caption-kind"


def _installed() -> bool:
    try:
        importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
def caption_kind_installed() -> Iterator[None]:
    """Install the example into this environment for the module's tests; uninstall it after
    unless it was installed before."""
    was_installed = _installed()
    if not was_installed:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", str(EXAMPLE)],
            check=True,
            capture_output=True,
            timeout=300,
        )
    yield
    if not was_installed:
        subprocess.run(
            [sys.executable, "-m", "pip", "uninstall", "-q", "-y", DISTRIBUTION],
            check=True,
            capture_output=True,
            timeout=120,
        )


async def test_an_installed_kind_package_is_listed_submitted_and_run_on_its_queues(
    caption_kind_installed: None,
    spawn_stack: Callable[..., Awaitable[Stack]],
    admin_http: Callable[[Stack], httpx.AsyncClient],
    tmp_path: Path,
) -> None:
    stack = await spawn_stack(workers=0)
    start_worker(stack, "--queue", "default")
    client = admin_http(stack)

    kinds = {item["name"]: item for item in (await client.get("/v1/kinds")).json()["items"]}
    assert kinds["video.caption"]["queue"] == "default"
    assert kinds["video.caption"]["deadline_seconds"] == 600
    assert kinds["video.transcribe"]["queue"] == "gpu"
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    assert schemas["CaptionJobCreate"]["properties"]["kind"]["const"] == "video.caption"
    listed = await asyncio.to_thread(run_cli, ["kinds", "--json"], stack.cli_env())
    assert listed.returncode == 0, listed.stderr
    assert {"video.caption", "video.transcribe"} <= {k["name"] for k in json.loads(listed.stdout)}

    url = "https://videos.example/river.mp4"
    job_input = tmp_path / "caption.json"
    job_input.write_text(json.dumps({"url": url, "language": "fr"}))
    submitted = await asyncio.to_thread(
        run_cli,
        ["submit", "video.caption", "--input", f"@{job_input}", "--watch", "--json"],
        stack.cli_env(),
    )
    assert submitted.returncode == 0, submitted.stderr
    done = json.loads(submitted.stdout)
    assert done["status"] == "completed" and done["kind"] == "video.caption"
    assert done["result"]["language"] == "fr" and done["result"]["caption"].endswith(".")
    events = (
        await client.get(f"/v1/jobs/{done['id']}/events", headers={"Accept": "application/json"})
    ).json()["items"]
    assert [(e["progress"], e["message"]) for e in events if e["type"] == "progress"] == [
        (20, "Downloading"),
        (60, "Listening"),
        (90, "Writing the caption"),
    ]

    refused = await asyncio.to_thread(
        run_cli,
        ["submit", "video.caption", "--input", '{"url": "http://plain.example/v.mp4"}', "--watch"],
        stack.cli_env(),
    )
    assert refused.returncode == 1, "a failed job exits 1"
    failed = await client.get("/v1/jobs", params={"kind": "video.caption", "status": "failed"})
    [bad] = failed.json()["items"]
    assert bad["error"] == {"code": "bad_url", "message": "Only https URLs are supported."}
    assert bad["attempts"] == 1

    invalid = await asyncio.to_thread(
        run_cli, ["submit", "video.caption", "--input", '{"link": "x"}'], stack.cli_env()
    )
    assert invalid.returncode == 2
    assert "invalid_input" in invalid.stderr and "url" in invalid.stderr

    transcript = await submit(client, "video.transcribe", {"url": url})
    await asyncio.sleep(1.0)  # the default-queue worker polls, and leaves it alone
    assert (await client.get(f"/v1/jobs/{transcript['id']}")).json()["status"] == "queued"
    start_worker(stack, "--queue", "gpu")
    finished = await wait_for_status(client, transcript["id"])
    assert finished["status"] == "completed", finished
    assert finished["result"]["worker_queue"] == "gpu" and finished["result"]["segments"] == 3
