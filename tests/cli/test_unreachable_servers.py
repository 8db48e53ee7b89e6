"""Every command that talks to PostgreSQL or Redis itself answers an unreachable or refusing
server with one line on stderr and exit code 3, never a traceback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobrelay.cli.exit_codes import ExitCode
from jobrelay.embedded import free_tcp_port
from tests.conftest import Stack
from tests.support.processes import base_env, run_cli


@pytest.fixture(scope="module")
def refusing_port() -> Iterator[int]:
    """A port bound but not listening: every connection to it is refused, and nothing else
    can take it while the tests run."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _assert_one_clean_line(result: object) -> None:
    assert hasattr(result, "returncode") and hasattr(result, "stderr")
    stderr: str = result.stderr
    assert result.returncode == ExitCode.UNREACHABLE, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr


def _archive(tmp_path: Path) -> str:
    archive = tmp_path / "some.dump"
    archive.write_bytes(b"PGDMP")
    return str(archive)


DATABASE_COMMANDS = [
    ["db", "upgrade"],
    ["db", "seed"],
    ["db", "backup", "{tmp}/out.dump"],
    ["db", "restore", "{archive}"],
    ["users", "create", "someone"],
    ["users", "list"],
    ["maintenance", "reconcile"],
    ["maintenance", "reap"],
    ["maintenance", "purge"],
    ["maintenance", "aggregate"],
    ["maintenance", "check-generator"],
    ["dev", "--port", "{port}", "--generator-port", "{port2}", "--data-dir", "{tmp}/dev"],
]


@pytest.mark.parametrize("command", DATABASE_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_refused_database_connection(
    command: list[str], refusing_port: int, stack: Stack, tmp_path: Path
) -> None:
    env = base_env(
        {
            **stack.env,
            "JOBRELAY_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{refusing_port}/jobrelay",
        }
    )
    args = [
        part.format(
            tmp=tmp_path,
            archive=_archive(tmp_path),
            port=free_tcp_port(),
            port2=free_tcp_port(),
        )
        for part in command
    ]
    result = run_cli(args, env)
    _assert_one_clean_line(result)
    assert "PostgreSQL" in result.stderr


@pytest.mark.parametrize("command", DATABASE_COMMANDS[:6], ids=lambda c: " ".join(c[:2]))
def test_a_database_that_refuses_the_login(
    command: list[str], stack: Stack, tmp_path: Path
) -> None:
    url = stack.env["JOBRELAY_DATABASE_URL"].rsplit("/", 1)[0] + "/no_such_database"
    env = base_env({**stack.env, "JOBRELAY_DATABASE_URL": url})
    args = [part.format(tmp=tmp_path, archive=_archive(tmp_path)) for part in command]
    result = run_cli(args, env)
    _assert_one_clean_line(result)
    assert "no_such_database" in result.stderr


def test_a_refused_redis_connection(refusing_port: int, stack: Stack) -> None:
    """The worker is the command that cannot do without Redis (the others reach it lazily)."""
    env = base_env({**stack.env, "JOBRELAY_REDIS_URL": f"redis://127.0.0.1:{refusing_port}/0"})
    result = run_cli(["worker"], env)
    _assert_one_clean_line(result)
    assert "Redis" in result.stderr
