"""A Redis primary, a replica and three Sentinels of our own on free ports, so a test can kill
the primary (SIGKILL) and watch Sentinel promote the replica, as in production."""

from __future__ import annotations

import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from jobrelay.embedded import free_tcp_port, redis_server_executable

MASTER_NAME = "jobrelay-primary"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000


@dataclass
class Server:
    name: str
    port: int
    command: list[str]
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.directory / f"{self.name}.log"

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def wait_ping(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log_path.read_text()[-2000:]}")
            try:
                with self.client() as conn:
                    if conn.ping():
                        return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not answer:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        """SIGKILL, as a crashed machine would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def pause(self) -> None:
        """SIGSTOP: the server keeps its connections open and answers nothing (a partition, a
        machine that hangs)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class SentinelGroup:
    """Primary, replica, three Sentinels (quorum 2), with short timeouts: a dead primary is
    noticed after DOWN_AFTER_MS and a replica promoted within a few seconds."""

    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="jr-sentinel-")))
    primary: Server | None = None
    replica: Server | None = None
    sentinels: list[Server] = field(default_factory=list)

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{MASTER_NAME}/0"

    def _redis(self, name: str, *extra: str) -> Server:
        port = free_tcp_port()
        command = [redis_server_executable(), "--port", str(port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        command += ["--dbfilename", f"{name}.rdb", *extra]
        return Server(name, port, command, self.directory)

    def _sentinel(self, index: int, primary_port: int) -> Server:
        port = free_tcp_port()
        config = self.directory / f"sentinel-{index}.conf"
        config.write_text(
            "\n".join(
                [
                    f"port {port}",
                    "bind 127.0.0.1",
                    f"dir {self.directory}",
                    f"sentinel monitor {MASTER_NAME} 127.0.0.1 {primary_port} 2",
                    f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
                    f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
                    f"sentinel parallel-syncs {MASTER_NAME} 1",
                    "",
                ]
            )
        )
        command = [redis_server_executable(), str(config), "--sentinel"]
        return Server(f"sentinel-{index}", port, command, self.directory)

    def start(self, timeout: float = 30.0) -> None:
        self.primary = self._redis("primary")
        self.primary.start()
        self.primary.wait_ping()
        self.replica = self._redis("replica", "--replicaof", "127.0.0.1", str(self.primary.port))
        self.replica.start()
        self.replica.wait_ping()
        self.sentinels = [self._sentinel(i, self.primary.port) for i in range(3)]
        for sentinel in self.sentinels:
            sentinel.start()
        for sentinel in self.sentinels:
            sentinel.wait_ping()
        self._wait_settled(timeout)

    def _wait_settled(self, timeout: float) -> None:
        """Until the replica is in sync and every Sentinel knows the replica and both other
        Sentinels: before that, a dead primary might not be failed over."""
        assert self.replica is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with self.replica.client() as conn:
                    linked = conn.info("replication").get("master_link_status") == "up"
                settled = linked
                for sentinel in self.sentinels:
                    with sentinel.client() as conn:
                        replicas = conn.execute_command("SENTINEL", "REPLICAS", MASTER_NAME)
                        peers = conn.execute_command("SENTINEL", "SENTINELS", MASTER_NAME)
                    settled = settled and len(replicas) == 1 and len(peers) == 2
                if settled:
                    return
            except redis.RedisError:
                pass
            time.sleep(0.1)
        raise RuntimeError(
            "Sentinels did not settle:\n" + "\n".join(s.log() for s in self.sentinels)
        )

    def primary_port(self) -> int:
        """The primary's port as the Sentinels report it now."""
        with self.sentinels[0].client() as conn:
            _, port = conn.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
        return int(port)

    def stop(self) -> None:
        for server in [*self.sentinels, self.replica, self.primary]:
            if server is not None:
                server.stop()
