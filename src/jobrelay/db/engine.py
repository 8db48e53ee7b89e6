"""Engine construction: one pool per process, tuned for short transactions."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from jobrelay.config import Settings

IDLE_PING_SECONDS = 2.0


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _unnamed_statement() -> str:
    """asyncpg's name for the unnamed statement, which the next Parse replaces."""
    return ""


def connect_args(settings: Settings) -> dict[str, Any]:
    """asyncpg's connection arguments, direct to PostgreSQL or through PgBouncer.

    Direct: `jit` off and a statement timeout as startup parameters, and prepared statements
    cached per connection (the fast path). Behind PgBouncer in transaction mode
    (`JOBRELAY_DB_PGBOUNCER`), consecutive transactions of one connection may run on different
    servers, and PgBouncer refuses startup parameters it does not know: only
    `application_name` is sent (set `jit` and `statement_timeout` on the database role
    instead), and every statement is prepared unnamed, by asyncpg and by SQLAlchemy alike, so
    no prepared statement outlives its transaction and no name can collide.
    """
    if settings.db_pgbouncer:
        return {
            "server_settings": {"application_name": "jobrelay"},
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            "prepared_statement_name_func": _unnamed_statement,
            "timeout": 5,
            "command_timeout": 30,
        }
    server_settings = {"jit": "off", "application_name": "jobrelay"}
    if settings.db_statement_timeout_ms:
        server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
    return {"server_settings": server_settings, "timeout": 5, "command_timeout": 30}


def make_engine(settings: Settings, *, pool_size: int | None = None) -> AsyncEngine:
    """Build the async engine; statement timeouts keep a stuck query from pinning a connection."""
    if not settings.database_url:
        raise RuntimeError("JOBRELAY_DATABASE_URL is not set")
    engine = create_async_engine(
        settings.sqlalchemy_url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=1800,
        json_serializer=_dumps,
        connect_args=connect_args(settings),
    )
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Check a pooled connection before use only if it sat idle for a while.

    SQLAlchemy's `pool_pre_ping` checks every checkout, and with asyncpg a check is three round
    trips (BEGIN, an empty query, ROLLBACK): more than the query it guards on the status path.
    A connection handed back milliseconds ago is as alive as the query that just used it; one
    idle for seconds may have been cut by a PostgreSQL restart, so it is checked, and a dead one
    invalidates the whole pool (every connection from before the restart) and is replaced.
    """
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _returned(dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _check(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < IDLE_PING_SECONDS:
            return
        try:
            dbapi_connection.ping()
        except Exception as error:
            raise exc.InvalidatePoolError("connection lost while idle in the pool") from error
