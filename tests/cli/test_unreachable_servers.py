"""Every command that talks to PostgreSQL or Redis itself answers an unreachable or refusing
server with one line on stderr and exit code 3, never a traceback; the worker, a server, waits
for Redis instead."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis import Redis

from jobrelay.cli.exit_codes import ExitCode
from jobrelay.embedded import free_tcp_port
from tests.conftest import Stack
from tests.reliability.servers import PrivateRedis
from tests.support.backends import Backends, clone_database, drop_database
from tests.support.processes import Proc, base_env, run_cli, worker_process


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


async def test_a_worker_started_while_redis_is_down_waits_for_it(
    backends: Backends, template_database: str, settings_env: dict[str, str]
) -> None:
    """The other commands reach Redis lazily; the worker is a server, and one started while Redis
    refuses (restarting, failing over) says so now and then in one line and starts serving as
    soon as Redis answers, instead of exiting."""
    name, database_url = await clone_database(backends.postgres_admin_url, template_database)
    redis = PrivateRedis()
    env = base_env(
        {**settings_env, "JOBRELAY_DATABASE_URL": database_url, "JOBRELAY_REDIS_URL": redis.url}
    )
    worker = worker_process(env).start()
    try:
        await _wait_for(lambda: "Redis unavailable" in worker.log(), worker)
        redis.start()
        probe = Redis.from_url(redis.url)
        try:
            await _wait_for(lambda: bool(probe.keys("*health-check*")), worker)
        finally:
            probe.close()
        assert "Traceback" not in worker.log()
    finally:
        worker.stop()
        redis.stop()
        await drop_database(backends.postgres_admin_url, name)


async def _wait_for(condition: Callable[[], bool], worker: Proc, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert worker.alive(), worker.log()
        assert time.monotonic() < deadline, worker.log()
        await asyncio.sleep(0.2)
