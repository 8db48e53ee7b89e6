"""Where the benchmarks run: the configured (or local) PostgreSQL and Redis, scratch databases
created and dropped by the run, spare Redis databases, and the real jobrelay processes.

Redis databases are reserved with the same lease keys the test suite uses
(`jobrelay:test-db-lease:<n>` in db 0), so a benchmark and a test run on one server never
flush each other's data.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import redis

from jobrelay.config import Settings
from jobrelay.embedded import EmbeddedServices, free_tcp_port, start_embedded

REPO = Path(__file__).resolve().parents[1]
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379"
REDIS_DBS = range(1, 16)


def _answers(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), timeout=0.5
        ):
            return True
    except OSError:
        return False


def _plain_dsn(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


@dataclass
class Backends:
    """An admin connection to a PostgreSQL server and the base URL of a Redis server."""

    postgres_dsn: str
    redis_base: str
    origin: str
    embedded: EmbeddedServices | None = None

    @classmethod
    def find(cls) -> Backends:
        """JOBRELAY_DATABASE_URL / JOBRELAY_REDIS_URL when set, else the local servers, else
        the embedded ones `jobrelay dev` uses."""
        configured = Settings()
        pg = _plain_dsn(configured.database_url) if configured.database_url else LOCAL_POSTGRES
        rd = configured.redis_url or LOCAL_REDIS
        origin = "configured" if configured.database_url else "local"
        embedded = None
        need_pg, need_redis = not _answers(pg, 5432), not _answers(rd, 6379)
        if need_pg or need_redis:
            data_dir = Path(tempfile.mkdtemp(prefix="jobrelay-bench-"))
            embedded = start_embedded(data_dir, postgres=need_pg, redis=need_redis)
            if need_pg and embedded.database_url:
                pg = _plain_dsn(embedded.database_url)
            if need_redis and embedded.redis_url:
                rd = embedded.redis_url
            origin = "embedded"
        parts = urlsplit(rd)
        redis_base = urlunsplit((parts.scheme, parts.netloc, "", parts.query, ""))
        return cls(postgres_dsn=pg, redis_base=redis_base, origin=origin, embedded=embedded)

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()

    async def server_version(self) -> str:
        conn = await asyncpg.connect(self.postgres_dsn)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    def redis_version(self) -> str:
        client = redis.Redis.from_url(f"{self.redis_base}/0")
        try:
            return str(client.info("server").get("redis_version", "?"))
        finally:
            client.close()


async def create_database(admin_dsn: str, *, template: str | None = None) -> str:
    name = f"jobrelay_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        clause = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{clause}')
    finally:
        await conn.close()
    return name


async def drop_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


class RedisLease:
    """A spare Redis logical database, flushed when taken and when given back."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.control = redis.Redis.from_url(f"{base_url}/0")
        self.token = uuid.uuid4().hex
        self.db: int | None = None

    def acquire(self) -> str:
        for db in REDIS_DBS:
            if self.control.set(f"jobrelay:test-db-lease:{db}", self.token, nx=True, ex=3 * 3600):
                self.db = db
                redis.Redis.from_url(self.url).flushdb()
                return self.url
        raise RuntimeError("no spare Redis database (1-15 are all leased)")

    @property
    def url(self) -> str:
        assert self.db is not None
        return f"{self.base_url}/{self.db}"

    def release(self) -> None:
        if self.db is not None:
            redis.Redis.from_url(self.url).flushdb()
            key = f"jobrelay:test-db-lease:{self.db}"
            if self.control.get(key) == self.token.encode():
                self.control.delete(key)
            self.db = None
        self.control.close()


def child_env(overrides: Mapping[str, str]) -> dict[str, str]:
    """The environment without the caller's JOBRELAY_* settings, plus the benchmark's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBRELAY_")}
    env.update(overrides)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


@dataclass
class Proc:
    """A child process in its own process group, its output in a temporary log file."""

    name: str
    args: list[str]
    env: dict[str, str]
    port: int | None = None
    popen: subprocess.Popen[bytes] | None = None
    log_path: Path = field(
        default_factory=lambda: Path(tempfile.mkstemp(prefix="jobrelay-bench-", suffix=".log")[1])
    )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> Proc:
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.args,
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_http(self, path: str = "/healthz", timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited early:\n{self.log()[-3000:]}")
            try:
                if httpx.get(self.url + path, timeout=1.0).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not answer in {timeout} s:\n{self.log()[-3000:]}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive():
            assert self.popen is not None
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        self.log_path.unlink(missing_ok=True)


def jobrelay_api(env: dict[str, str]) -> Proc:
    port = free_tcp_port()
    args = [sys.executable, "-m", "jobrelay.cli", "api", "--host", "127.0.0.1"]
    return Proc("api", [*args, "--port", str(port)], child_env(env), port=port)


def jobrelay_worker(env: dict[str, str]) -> Proc:
    return Proc("worker", [sys.executable, "-m", "jobrelay.cli", "worker"], child_env(env))


def rss_mb(pid: int) -> float:
    """Resident memory of one process, in MiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def have_py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return found if Path(found).exists() else None


def pid_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds used so far by each of these processes that still exists."""
    used = {}
    for pid in pids:
        try:
            used[pid] = cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return used


def redis_server_pid(port: int) -> int | None:
    """The local redis-server listening on `port`, if it runs on this machine."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "redis-server" in cmdline and f":{port}" in cmdline:
            return int(proc.name)
    return None
