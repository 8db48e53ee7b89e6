"""Schemathesis against the running service's `/openapi.json`, every check on, as an admin.

Positive cases must be accepted, negative ones refused with a documented status, every
response must match its documented status, content type, headers and schema (SSE events
included), and no request may produce a 5xx. `tests/fuzz/hooks.py` supplies the few values
whose validity depends on the service's data rather than on the request's shape.

The callback routes authenticate with the generator's signatures, not an API key, so here they
only show that unsigned requests are refused; tests/quizzes and the reliability state machine
drive them signed.

Reproduce a run: the seed is printed; `JOBRELAY_FUZZ_SEED=<seed>` repeats it, and
`JOBRELAY_FUZZ_EXAMPLES` sets the examples per operation.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import Stack
from tests.reliability.clients import create_user
from tests.support.peers import serve

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = os.environ.get("JOBRELAY_FUZZ_EXAMPLES", "100")
SEED = os.environ.get("JOBRELAY_FUZZ_SEED", "20261123")


def _schemathesis() -> str:
    bundled = Path(sys.executable).parent / "st"
    return str(bundled) if bundled.exists() else "st"


async def _accept(_: Request) -> Response:
    return Response(status_code=204)


@pytest.mark.timeout(420)
async def test_api_conforms_to_its_openapi_document(spawn_stack, tmp_path: Path) -> None:
    stack: Stack = await spawn_stack(workers=1, generator=True)
    someone = await create_user(stack, name="fuzz-owner")
    with serve(Starlette(routes=[Route("/hook", _accept, methods=["POST"])])) as sink:
        command = [
            _schemathesis(),
            "run",
            f"{stack.api_url}/openapi.json",
            "--checks", "all",
            "--header", f"Authorization: Bearer {stack.admin_key}",
            "--max-examples", EXAMPLES,
            "--seed", SEED,
            "--generation-allow-x00", "false",
            "--request-timeout", "30",
            "--output-truncate", "false",
            "--no-color",
        ]  # fmt: skip
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks",
            "JOBRELAY_FUZZ_USER_ID": str(someone["user"]["id"]),
            "JOBRELAY_FUZZ_WEBHOOK": f"{sink}/hook",
        }
        done = await asyncio.to_thread(
            subprocess.run,
            command,
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=360,
        )
    report = done.stdout + done.stderr
    summary = "\n".join(line for line in report.splitlines()[-15:] if line.strip())
    print(summary)
    assert done.returncode == 0, report[-20_000:]
    assert " passed" in report and "failure" not in summary
    assert "unexpected error" not in stack.api.log()
