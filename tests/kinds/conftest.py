"""Stacks that load the test kinds (tests/kinds/sample_kinds.py through JOBRELAY_KINDS) and run
workers on chosen queues."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from jobrelay import signing
from tests.conftest import Stack
from tests.support.processes import CLI, Proc, base_env

REPO = Path(__file__).resolve().parents[2]
SAMPLE_KINDS = "tests.kinds.sample_kinds"
ECHO_SECRET = signing.new_secret()

KindStack = Callable[..., Awaitable[Stack]]


def with_repo_on_path(env: dict[str, str]) -> dict[str, str]:
    """Kind modules named in JOBRELAY_KINDS are imported from the repository (tests.kinds...)."""
    path = [str(REPO), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
    return {**env, "PYTHONPATH": os.pathsep.join(path)}


def start_worker(stack: Stack, *args: str, **overrides: str) -> Proc:
    """Another worker process of `stack` (`jobrelay worker ARGS`), stopped with the stack."""
    env = {
        **stack.env,
        **{f"JOBRELAY_{key.upper()}": value for key, value in overrides.items()},
    }
    proc = Proc("worker", [*CLI, "worker", *args], with_repo_on_path(base_env(env))).start()
    stack.workers.append(proc)
    return proc


@pytest.fixture
async def kind_stack(
    spawn_stack: Callable[..., Awaitable[Stack]], monkeypatch: pytest.MonkeyPatch
) -> KindStack:
    """`await kind_stack(echo_worker_url=...)`: a stack (API, no worker) whose processes load
    the sample kinds; add workers with `start_worker`."""
    monkeypatch.setenv("PYTHONPATH", with_repo_on_path(dict(os.environ))["PYTHONPATH"])

    async def make(**overrides: str) -> Stack:
        return await spawn_stack(
            workers=0,
            kinds=SAMPLE_KINDS,
            echo_worker_secret=ECHO_SECRET,
            **overrides,
        )

    return make


@pytest.fixture
async def admin_http() -> AsyncIterator[Callable[[Stack], httpx.AsyncClient]]:
    opened: list[httpx.AsyncClient] = []

    def make(stack: Stack) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            base_url=stack.api_url,
            headers={"Authorization": f"Bearer {stack.admin_key}"},
            timeout=30,
        )
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()
