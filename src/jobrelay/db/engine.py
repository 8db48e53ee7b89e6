"""Engine construction: one pool per process, tuned for short transactions."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from jobrelay.config import Settings


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def make_engine(settings: Settings, *, pool_size: int | None = None) -> AsyncEngine:
    """Build the async engine; statement timeouts keep a stuck query from pinning a connection."""
    if not settings.database_url:
        raise RuntimeError("JOBRELAY_DATABASE_URL is not set")
    server_settings = {"jit": "off", "application_name": "jobrelay"}
    if settings.db_statement_timeout_ms:
        server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
    return create_async_engine(
        settings.sqlalchemy_url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_pre_ping=True,
        pool_recycle=1800,
        json_serializer=_dumps,
        connect_args={"server_settings": server_settings, "timeout": 5, "command_timeout": 30},
    )
