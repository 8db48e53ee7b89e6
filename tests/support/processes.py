"""Real processes for the tests: the API, workers, the reference generator, the CLI."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from jobrelay.embedded import free_tcp_port

CLI = [sys.executable, "-m", "jobrelay.cli"]


def base_env(settings_env: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBRELAY_")}
    env.update(settings_env)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


@dataclass
class Proc:
    name: str
    args: list[str]
    env: dict[str, str]
    url: str | None = None
    popen: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkstemp(suffix=".log")[1]))

    def start(self) -> Proc:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _port_was_taken(self) -> bool:
        return "--port" in self.args and "address already in use" in self.log().lower()

    def _restart_on_another_port(self) -> None:
        """The port picked was taken by someone else before the server bound it: pick anew."""
        port = free_tcp_port()
        self.args[self.args.index("--port") + 1] = str(port)
        self.url = f"http://127.0.0.1:{port}"
        self.log_path.write_text("")
        self.start()

    def wait_http(self, path: str = "/healthz", timeout: float = 30.0) -> None:
        assert self.url is not None
        deadline = time.monotonic() + timeout
        retries = 3
        while time.monotonic() < deadline:
            if not self.alive() and self._port_was_taken() and retries:
                retries -= 1
                self._restart_on_another_port()
                continue
            if not self.alive():
                raise RuntimeError(f"{self.name} exited early:\n{self.log()[-4000:]}")
            try:
                if httpx.get(self.url + path, timeout=1.0).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer in {timeout}s:\n{self.log()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.alive():
            assert self.popen is not None
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive():
            return
        assert self.popen is not None
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def api_process(env: dict[str, str], port: int | None = None) -> Proc:
    port = port or free_tcp_port()
    return Proc(
        "api",
        [*CLI, "api", "--host", "127.0.0.1", "--port", str(port)],
        env,
        url=f"http://127.0.0.1:{port}",
    )


def worker_process(env: dict[str, str]) -> Proc:
    return Proc("worker", [*CLI, "worker"], env)


def generator_process(env: dict[str, str], port: int | None = None) -> Proc:
    port = port or free_tcp_port()
    return Proc(
        "generator",
        [*CLI, "generator", "--host", "127.0.0.1", "--port", str(port)],
        env,
        url=f"http://127.0.0.1:{port}",
    )


def run_cli(
    args: list[str], env: Mapping[str, str], *, timeout: float = 120, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input_text,
    )
