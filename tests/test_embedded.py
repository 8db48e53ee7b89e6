"""The embedded PostgreSQL and Redis: real servers, usable by every client jobrelay uses.

These tests start their own servers in temporary directories and never touch the system ones.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from arq.connections import RedisSettings, create_pool
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from jobrelay.embedded import (
    EmbeddedServices,
    IncompatibleDataDirectory,
    bundled_major,
    free_tcp_port,
    postgres_bin_dir,
    redis_server_executable,
    start_embedded,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[EmbeddedServices]:
    with start_embedded(tmp_path / "data") as started:
        yield started


def _plain_url(services: EmbeddedServices) -> str:
    assert services.database_url is not None
    assert services.database_url.startswith("postgresql+asyncpg://")
    return services.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def _kill_if_alive(*pids: int) -> None:
    """Leave no server behind when a test fails half-way."""
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postgres" / "postmaster.pid").read_text().splitlines()[0])


async def _redis_pid(redis_url: str) -> int:
    client = Redis.from_url(redis_url)
    try:
        info = await client.info("server")
        return int(info["process_id"])
    finally:
        await client.aclose()


async def test_postgres_rows_survive_stop_and_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = start_embedded(data_dir, redis=False)
    assert first.redis_url is None
    assert first.database_url is not None
    engine = create_async_engine(first.database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE kept (id int PRIMARY KEY, note text)"))
            await connection.execute(text("INSERT INTO kept VALUES (1, 'before restart')"))
    finally:
        await engine.dispose()
    first.stop()
    first.stop()

    second = start_embedded(data_dir, redis=False)
    try:
        assert second.database_url == first.database_url, "a free remembered port is reused"
        assert second.database_url is not None
        engine = create_async_engine(second.database_url)
        try:
            async with engine.connect() as connection:
                notes = (await connection.execute(text("SELECT note FROM kept"))).scalars().all()
        finally:
            await engine.dispose()
        assert notes == ["before restart"]
    finally:
        second.stop()


async def test_database_url_works_for_raw_asyncpg(services: EmbeddedServices) -> None:
    connection = await asyncpg.connect(_plain_url(services))
    try:
        assert await connection.fetchval("SELECT current_database()") == "jobrelay"
    finally:
        await connection.close()


def test_database_url_works_for_libpq_tools(services: EmbeddedServices) -> None:
    psql = subprocess.run(
        [str(postgres_bin_dir() / "psql"), _plain_url(services), "-XtAc", "SELECT 40 + 2"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert psql.stdout.strip() == "42"
    dump = subprocess.run(
        [str(postgres_bin_dir() / "pg_dump"), "--schema-only", _plain_url(services)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "PostgreSQL database dump" in dump.stdout


async def test_redis_url_works_for_redis_py_and_arq(services: EmbeddedServices) -> None:
    assert services.redis_url is not None
    assert services.redis_url.startswith("redis://127.0.0.1:")
    client = Redis.from_url(services.redis_url)
    try:
        assert await client.ping() is True
        await client.set("embedded:key", "value")
        assert await client.get("embedded:key") == b"value"
    finally:
        await client.aclose()

    pool = await create_pool(RedisSettings.from_dsn(services.redis_url))
    try:
        job = await pool.enqueue_job("noop", _job_id="embedded-job")
        assert job is not None
        assert await pool.enqueue_job("noop", _job_id="embedded-job") is None
        assert await pool.zcard("arq:queue") == 1
    finally:
        await pool.aclose()


async def test_stop_leaves_no_server_process(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    services = start_embedded(data_dir)
    assert services.database_url is not None
    assert services.redis_url is not None
    postgres_pid = _postmaster_pid(data_dir)
    redis_pid = await _redis_pid(services.redis_url)
    assert _alive(postgres_pid)
    assert _alive(redis_pid)

    services.stop()

    assert not _alive(postgres_pid)
    assert not _alive(redis_pid)
    assert not (data_dir / "postgres" / "postmaster.pid").exists(), "clean shutdown"
    assert not _accepts_connections(_port_of(services.database_url))
    assert not _accepts_connections(_port_of(services.redis_url))


async def test_second_start_while_first_runs_shares_the_servers(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    owner = start_embedded(data_dir)
    try:
        sharer = start_embedded(data_dir)
        assert (sharer.database_url, sharer.redis_url) == (owner.database_url, owner.redis_url)
        postgres_pid = _postmaster_pid(data_dir)
        sharer.stop()
        assert _alive(postgres_pid), "only the starter stops the servers"
        assert owner.redis_url is not None
        client = Redis.from_url(owner.redis_url)
        try:
            assert await client.ping() is True
        finally:
            await client.aclose()
    finally:
        owner.stop()
    assert not _alive(postgres_pid)


_STARTER = """
import json, sys, threading, time
from pathlib import Path
from jobrelay.embedded import start_embedded

def start():
    services = start_embedded(Path(sys.argv[1]))
    print(json.dumps({"database_url": services.database_url, "redis_url": services.redis_url}),
          flush=True)

if sys.argv[2] == "thread":
    worker = threading.Thread(target=start)
    worker.start()
    worker.join()
else:
    start()
time.sleep(120)
"""


def _start_then_kill(data_dir: Path, mode: str) -> tuple[int, int]:
    """Start the servers in a child process, SIGKILL it, return (postgres pid, redis pid)."""
    starter = subprocess.Popen(
        [sys.executable, "-c", _STARTER, str(data_dir), mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert starter.stdout is not None
        urls = json.loads(starter.stdout.readline())
        with SyncRedis.from_url(urls["redis_url"]) as client:
            redis_pid = int(client.info("server")["process_id"])
        postgres_pid = _postmaster_pid(data_dir)
    finally:
        starter.send_signal(signal.SIGKILL)
        starter.wait()
        if starter.stdout is not None:
            starter.stdout.close()
    return postgres_pid, redis_pid


def test_servers_die_with_a_sigkilled_parent(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    postgres_pid, redis_pid = _start_then_kill(data_dir, "main")
    try:
        assert _wait_for(lambda: not _alive(postgres_pid) and not _alive(redis_pid))
    finally:
        _kill_if_alive(postgres_pid, redis_pid)

    with start_embedded(data_dir) as services:
        assert services.database_url is not None
        assert _accepts_connections(_port_of(services.database_url))


async def test_leftover_servers_of_a_crashed_run_are_taken_over(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # Started off the main thread there is no parent-death signal: the servers outlive it.
    postgres_pid, redis_pid = _start_then_kill(data_dir, "thread")
    try:
        assert _alive(postgres_pid)
        assert _alive(redis_pid)

        with start_embedded(data_dir) as services:
            assert not _alive(postgres_pid)
            assert not _alive(redis_pid)
            assert services.redis_url is not None
            new_redis_pid = await _redis_pid(services.redis_url)
            new_postgres_pid = _postmaster_pid(data_dir)
            assert {new_redis_pid, new_postgres_pid}.isdisjoint({redis_pid, postgres_pid})
            connection = await asyncpg.connect(_plain_url(services))
            try:
                assert await connection.fetchval("SELECT 1") == 1
            finally:
                await connection.close()
        assert not _alive(new_postgres_pid)
        assert not _alive(new_redis_pid)
    finally:
        _kill_if_alive(postgres_pid, redis_pid)


def test_helpers_point_at_real_binaries() -> None:
    bin_dir = postgres_bin_dir()
    for name in ("pg_ctl", "postgres", "initdb", "psql", "pg_dump", "pg_restore"):
        assert os.access(bin_dir / name, os.X_OK), name
    assert os.access(redis_server_executable(), os.X_OK)
    port = free_tcp_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_restart_moves_to_a_new_port_when_the_old_one_is_taken(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with start_embedded(data_dir, redis=False) as first:
        assert first.database_url is not None
    with socket.socket() as squatter:
        # SO_REUSEADDR: the port just released may still have connections in TIME_WAIT, which
        # would refuse a plain bind; a listener still takes the port from PostgreSQL.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", _port_of(first.database_url)))
        squatter.listen()
        with start_embedded(data_dir, redis=False) as second:
            assert second.database_url is not None
            assert second.database_url != first.database_url
            psql = subprocess.run(
                [str(postgres_bin_dir() / "psql"), _plain_url(second), "-XtAc", "SELECT 1"],
                capture_output=True,
                text=True,
                check=True,
            )
            assert psql.stdout.strip() == "1"


def _old_cluster(pgdata: Path) -> int:
    """A cluster of another major version: a real one made by the system's initdb when it has
    one of another version (PostgreSQL 15 on Debian 12), else its marker file alone."""
    ours = bundled_major()
    for initdb in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")):
        major = int(Path(initdb).parts[-3])
        if major == ours:
            continue
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        as_root = os.geteuid() == 0
        if as_root:  # initdb refuses root: run it as `postgres`, let it reach the directory
            pgdata.parent.chmod(0o777)
            for parent in pgdata.parent.parents:
                parent.chmod(parent.stat().st_mode | 0o001)
        account = pwd.getpwnam("postgres") if as_root else None
        made = subprocess.run(
            [initdb, "-D", str(pgdata), "-U", "postgres", "--auth=trust"],
            capture_output=True,
            text=True,
            check=False,
            cwd=pgdata.parent,
            user=account.pw_uid if account else None,
            group=account.pw_gid if account else None,
        )
        assert made.returncode == 0, made.stderr
        return major
    pgdata.mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text(f"{ours - 2}\n")
    (pgdata / "base").mkdir()
    return ours - 2


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_a_cluster_of_another_major_version_is_refused_and_left_untouched(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    pgdata = data_dir / "postgres"
    old_major = _old_cluster(pgdata)
    before = _snapshot(pgdata)

    with pytest.raises(IncompatibleDataDirectory) as refused:
        start_embedded(data_dir)

    message = str(refused.value)
    assert f"PostgreSQL {old_major}" in message
    assert f"PostgreSQL {bundled_major()}" in message
    assert "Nothing was changed" in message
    assert "jobrelay db backup" in message and "jobrelay db restore" in message
    assert _snapshot(pgdata) == before
    assert not (pgdata / "postmaster.pid").exists()
