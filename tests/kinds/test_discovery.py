"""Discovery as an operator meets it: kind modules named in JOBRELAY_KINDS are imported by the
API and by every worker, and a duplicate name or a broken module stops start-up with one line
that says which."""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.kinds.conftest import with_repo_on_path
from tests.support.processes import base_env, run_cli

NO_SERVERS = {
    "JOBRELAY_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
    "JOBRELAY_REDIS_URL": "redis://127.0.0.1:1/0",
}


def _env(kinds: str) -> dict[str, str]:
    return with_repo_on_path(base_env({**NO_SERVERS, "JOBRELAY_KINDS": kinds}))


@pytest.mark.parametrize("command", [["api", "--port", "1"], ["worker"], ["worker", "-q", "slow"]])
async def test_two_kinds_with_one_name_stop_start_up_naming_both(command: list[str]) -> None:
    kinds = "tests.kinds.sample_kinds, tests.kinds.duplicate_kinds"
    done = await asyncio.to_thread(run_cli, command, _env(kinds), timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    message = " ".join((done.stdout + done.stderr).split())
    assert "two job kinds are named 'test.sleep'" in message
    assert "tests.kinds.sample_kinds:sleep" in message
    assert "tests.kinds.duplicate_kinds:another_sleep" in message
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        (
            "tests.kinds.broken_kinds",
            "cannot import 'tests.kinds.broken_kinds' (from JOBRELAY_KINDS): RuntimeError: "
            "this module is broken on purpose",
        ),
        ("no_such_kinds_module", "cannot import 'no_such_kinds_module' (from JOBRELAY_KINDS)"),
    ],
)
async def test_a_kind_module_that_cannot_be_imported_stops_start_up(
    kinds: str, expected: str
) -> None:
    done = await asyncio.to_thread(run_cli, ["worker"], _env(kinds), timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert expected in " ".join((done.stdout + done.stderr).split())
    assert "Traceback" not in done.stderr


def test_the_test_process_has_only_the_built_in_kinds_and_installed_ones() -> None:
    """JOBRELAY_KINDS is not set for the test run itself; the other tests set it per stack."""
    assert "JOBRELAY_KINDS" not in os.environ
