"""One clean line and exit code 3 for a PostgreSQL or Redis failure in any command.

Commands do not each guard against unreachable servers: `main()` catches what escapes them and
turns a database, Redis or connection error into `error: ...` on stderr and the contract's
`UNREACHABLE` exit code. Anything else is a bug and keeps its traceback. The drivers are
imported only when something failed, so client commands start as fast as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["describe"]

# What PgBouncer in transaction mode answers a client that does not know it is there.
_PGBOUNCER_SIGNS = (
    "unsupported startup parameter",
    "prepared statement",
)
_PGBOUNCER_HINT = " (behind PgBouncer in transaction mode? set JOBRELAY_DB_PGBOUNCER=true)"
_CLASS_PREFIX = re.compile(r"^<class '[\w.]+'>:\s*")


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return _CLASS_PREFIX.sub("", lines[0]) if lines else ""


def _database_message(exc: BaseException) -> str:
    from sqlalchemy.exc import DBAPIError

    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    detail = _first_line(str(cause)) or type(cause).__name__
    hint = _PGBOUNCER_HINT if any(sign in detail for sign in _PGBOUNCER_SIGNS) else ""
    return f"PostgreSQL failed: {detail}{hint}"


def describe(exc: BaseException) -> str | None:
    """The one line for a server failure, or None when `exc` is not one."""
    import asyncpg
    from redis.exceptions import RedisError
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeoutError

    from jobrelay.embedded import EmbeddedServerError

    for leaf in _leaves(exc):
        if isinstance(leaf, DBAPIError | asyncpg.PostgresError | asyncpg.InterfaceError):
            return _database_message(leaf)
        if isinstance(leaf, PoolTimeoutError):
            return "PostgreSQL failed: no connection free in time"
        if isinstance(leaf, RedisError):
            return f"Redis failed: {_first_line(str(leaf)) or type(leaf).__name__}"
        if isinstance(leaf, EmbeddedServerError):
            return f"the embedded servers could not start: {_first_line(str(leaf))}"
        if isinstance(leaf, OSError | TimeoutError):
            detail = _first_line(str(leaf)) or type(leaf).__name__
            return f"could not reach {_which_server(detail)}: {detail}"
    return None


def _which_server(detail: str) -> str:
    """Name the server whose port the connection error mentions."""
    from urllib.parse import urlsplit

    from jobrelay.config import get_settings

    settings = get_settings()
    for name, url in (("PostgreSQL", settings.database_url), ("Redis", settings.redis_url)):
        try:
            port = urlsplit(url).port
        except ValueError:
            continue
        if port is not None and re.search(rf"\b{port}\b", detail):
            return name
    return "PostgreSQL or Redis"
