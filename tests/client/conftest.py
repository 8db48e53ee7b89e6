"""A stack whose prompt jobs take a couple of seconds (steps of 0.3 s), and users made through
the admin API, for the client tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import Stack, start_stack, stop_stack

NewUser = Callable[..., str]


@pytest.fixture(scope="module")
def slow_stack(settings_env: dict[str, str], admin_key: str) -> Iterator[Stack]:
    env = {
        **settings_env,
        "JOBRELAY_QUEUE_NAME": f"jobrelay:queue:{uuid.uuid4().hex[:8]}",
        "JOBRELAY_PROMPT_STEP_DELAY": "0.3",
    }
    running = start_stack(env, admin_key, workers=1, generator=False)
    yield running
    stop_stack(running)


def create_user(target: Stack, *, tokens: int = 100_000) -> str:
    """A new user on `target`'s API; returns its API key."""
    response = httpx.post(
        f"{target.api_url}/v1/users",
        json={"name": f"client-{uuid.uuid4().hex[:8]}", "role": "user", "tokens": tokens},
        headers={"Authorization": f"Bearer {target.admin_key}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    key: str = response.json()["api_key"]
    return key


@pytest.fixture
def new_user(stack: Stack) -> NewUser:
    def make(*, tokens: int = 100_000, on: Stack | None = None) -> str:
        return create_user(on or stack, tokens=tokens)

    return make
