"""Stacks for following jobs: one whose prompt jobs take a few seconds (steps of 0.3 s), and
one with no worker at all, where a job stays queued until someone acts on it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import Stack, start_stack, stop_stack


def _env(settings_env: dict[str, str], **overrides: str) -> dict[str, str]:
    return {
        **settings_env,
        "JOBRELAY_QUEUE_NAME": f"jobrelay:queue:{uuid.uuid4().hex[:8]}",
        **{f"JOBRELAY_{name.upper()}": value for name, value in overrides.items()},
    }


@pytest.fixture(scope="module")
def slow_stack(settings_env: dict[str, str], admin_key: str) -> Iterator[Stack]:
    running = start_stack(
        _env(settings_env, prompt_step_delay="0.3"), admin_key, workers=1, generator=False
    )
    yield running
    stop_stack(running)


@pytest.fixture(scope="module")
def idle_stack(settings_env: dict[str, str], admin_key: str) -> Iterator[Stack]:
    running = start_stack(_env(settings_env), admin_key, workers=0, generator=False)
    yield running
    stop_stack(running)
