"""What both embedded servers share: child processes, readiness, ports and leftover servers.

Process facts (alive, parent, command line) come from psutil, so the same code runs on Linux
and macOS; the parent-death signal is Linux-only and optional.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil

__all__ = [
    "LOOPBACK",
    "ChildServer",
    "EmbeddedServerError",
    "ExitedEarly",
    "free_tcp_port",
    "log_tail",
    "parent_death_signal",
    "pid_alive",
    "port_is_free",
    "process_command_line",
    "read_pid",
    "started_by_live_owner",
    "stop_foreign_process",
    "wait_until",
]

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
_PR_SET_PDEATHSIG = 1


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be set up or started; the message says why and what to do."""


class ExitedEarly(Exception):
    """The server process ended before it became ready."""


@dataclass
class ChildServer:
    """A server process this process started and therefore has to stop."""

    name: str
    process: subprocess.Popen[bytes]
    stop_signal: signal.Signals
    log_file: IO[bytes]

    def stop(self) -> None:
        """Ask for a clean shutdown, escalate only if it does not come."""
        escalation = [self.stop_signal, signal.SIGQUIT, signal.SIGKILL]
        timeouts = [STOP_TIMEOUT, 5.0, 5.0]
        try:
            for sig, timeout in zip(escalation, timeouts, strict=True):
                if self.process.poll() is not None:
                    break
                if sig is not self.stop_signal:
                    logger.warning("embedded %s did not stop, sending %s", self.name, sig.name)
                with contextlib.suppress(ProcessLookupError):
                    self.process.send_signal(sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout)
        finally:
            self.log_file.close()
        logger.info("embedded %s (pid %d) stopped", self.name, self.process.pid)


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """Whether a server could bind `port` on 127.0.0.1 now (TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def wait_until(
    ready: Callable[[], bool],
    process: subprocess.Popen[bytes],
    *,
    what: str,
    log_path: Path,
    log_start: int,
) -> None:
    """Poll `ready` until true; fail fast if the process exits, with its log if it hangs."""
    deadline = time.monotonic() + START_TIMEOUT
    delay = 0.01
    while not ready():
        if process.poll() is not None:
            raise ExitedEarly
        if time.monotonic() > deadline:
            tail = log_tail(log_path, log_start)
            raise EmbeddedServerError(f"{what} not ready after {START_TIMEOUT:.0f}s:\n{tail}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def log_tail(log_path: Path, start: int, limit: int = 4000) -> str:
    """What the server wrote to its log since `start`, at most `limit` characters."""
    with log_path.open("rb") as handle:
        handle.seek(start)
        return handle.read().decode(errors="replace")[-limit:]


def parent_death_signal(sig: signal.Signals) -> Callable[[], None] | None:
    """A preexec hook so the child gets `sig` when this thread dies (Linux, main thread only).

    The kernel ties the signal to the thread that forked, so from any other thread the server
    would die with that thread; there (and on macOS) we rely on `stop()` and on leftover
    detection at the next start instead.
    """
    if not sys.platform.startswith("linux"):
        return None
    if threading.current_thread() is not threading.main_thread():
        logger.debug("not on the main thread: embedded servers get no parent-death signal")
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    signal_number = int(sig)

    def set_parent_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal_number, 0, 0, 0)

    return set_parent_death_signal


def pid_alive(pid: int) -> bool:
    """True for a running process; zombies count as dead."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def process_command_line(pid: int) -> str:
    """The command line of `pid` (empty if unknown), to tell our servers from pid reuse."""
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except (psutil.Error, OSError):
        return ""


def _parent_pid(pid: int) -> int:
    try:
        return int(psutil.Process(pid).ppid())
    except (psutil.Error, OSError):
        return 0


def started_by_live_owner(pid: int, owner_pid: int | None) -> bool:
    """Whether `pid` is still the child of the live process recorded as having started it.

    A server whose starter died is re-parented, so its parent no longer matches the owner.
    """
    return owner_pid is not None and pid_alive(owner_pid) and _parent_pid(pid) == owner_pid


def stop_foreign_process(pid: int, sig: signal.Signals) -> None:
    """Stop a server that is not our child: `sig` first, then SIGQUIT, then SIGKILL."""
    for current, timeout in ((sig, STOP_TIMEOUT), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        try:
            psutil.Process(pid).send_signal(current)
        except psutil.NoSuchProcess:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.05)
    raise EmbeddedServerError(f"could not stop leftover server pid {pid}")


def read_pid(pid_file: Path) -> int | None:
    try:
        text = pid_file.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
