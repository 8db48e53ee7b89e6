"""A real PgBouncer (Debian package `pgbouncer`) in transaction mode in front of the tests'
PostgreSQL: stock settings plus `pool_mode = transaction`, on a port of its own."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from jobrelay.embedded import free_tcp_port

INSTALL_HINT = "apt-get install pgbouncer"


def pgbouncer_executable() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(p, os.X_OK)), None
    )


def _config(postgres_host: str, postgres_port: int, port: int, directory: Path) -> str:
    return "\n".join(
        [
            "[databases]",
            f"* = host={postgres_host} port={postgres_port}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {port}",
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {directory / 'users.txt'}",
            "pool_mode = transaction",
            "",
        ]
    )


@dataclass
class PgBouncer:
    """PgBouncer for the PostgreSQL of `postgres_url`; `url(database)` goes through it."""

    postgres_url: str
    port: int = 0
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pgbouncer-")))
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> PgBouncer:
        executable = pgbouncer_executable()
        assert executable, f"PgBouncer is not installed: {INSTALL_HINT}"
        target = urlsplit(self.postgres_url)
        user = target.username or "postgres"
        (self.directory / "users.txt").write_text(f'"{user}" ""\n')
        # PgBouncer refuses to run as root: as root, run it as `nobody`.
        as_root = os.geteuid() == 0
        if as_root:
            self.directory.chmod(0o755)
            for parent in self.directory.parents:
                parent.chmod(parent.stat().st_mode | 0o001)
        for _ in range(5):  # the port picked may be taken before PgBouncer binds it
            self.port = free_tcp_port()
            config = self.directory / "pgbouncer.ini"
            config.write_text(
                _config(
                    target.hostname or "127.0.0.1", target.port or 5432, self.port, self.directory
                )
            )
            with (self.directory / "pgbouncer.log").open("ab") as log:
                self.process = subprocess.Popen(
                    [executable, str(config)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    user="nobody" if as_root else None,
                    start_new_session=True,
                )
            if self._wait_listening():
                return self
        raise AssertionError(f"PgBouncer did not start:\n{self.log()}")

    def _wait_listening(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)
        self.stop()
        return False

    def url(self, database: str) -> str:
        target = urlsplit(self.postgres_url)
        user = target.username or "postgres"
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        return (self.directory / "pgbouncer.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)
