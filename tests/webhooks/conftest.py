"""A webhook receiver per test (a real HTTP server on loopback; the stack allows private
addresses, as `jobrelay dev` does)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.webhooks.receiver import Receiver, running_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running
