"""The one place that turns `JOBRELAY_REDIS_URL` into Redis clients.

Two forms are accepted:

    redis://[user:password@]host:6379/0                 one server
    redis+sentinel://[user:password@]h1:26379,h2:26379,h3:26379/<master name>/<db>

With Sentinels, every client (the API's, the queue's ARQ pool, the ARQ worker's pool, pub/sub)
asks the Sentinels for the current primary when it connects, and connects again when a
connection to the old primary breaks, so a failover needs no restart: requests fail with `503`
while no primary answers and succeed again once Sentinel has promoted a replica. The password is
the Redis servers' (`requirepass`/ACL user); the Sentinels are reached without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from jobrelay.config import Settings

__all__ = [
    "SENTINEL_SCHEME",
    "RedisAddress",
    "arq_pool",
    "arq_settings",
    "client",
    "connection_pool",
    "parse_redis_url",
]

SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_SENTINEL_PORT = 26379


@dataclass(frozen=True)
class RedisAddress:
    """Where Redis is: a plain URL, or Sentinels with the name of the primary they watch."""

    url: str
    sentinels: tuple[tuple[str, int], ...] = ()
    master_name: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None

    @property
    def uses_sentinel(self) -> bool:
        return bool(self.sentinels)


def parse_redis_url(url: str) -> RedisAddress:
    """Parse either form; a malformed Sentinel URL raises ValueError naming what is wrong."""
    scheme, _, rest = url.partition("://")
    if scheme != SENTINEL_SCHEME:
        return RedisAddress(url=url)
    netloc, _, path = rest.partition("/")
    credentials, _, hosts = netloc.rpartition("@")
    username = password = None
    if credentials:
        user, has_password, secret = credentials.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if has_password else None
    sentinels = tuple(_host_port(part) for part in hosts.split(",") if part)
    if not sentinels:
        raise ValueError(f"{SENTINEL_SCHEME} URL names no Sentinel host")
    master_name, _, db_text = path.partition("?")[0].removesuffix("/").partition("/")
    if not master_name:
        raise ValueError(f"{SENTINEL_SCHEME} URL names no master: …/<master name>/<db>")
    try:
        db = int(db_text) if db_text else 0
    except ValueError:
        raise ValueError(f"{SENTINEL_SCHEME} URL has a non-numeric db {db_text!r}") from None
    return RedisAddress(
        url=url,
        sentinels=sentinels,
        master_name=unquote(master_name),
        db=db,
        username=username,
        password=password,
    )


def _host_port(part: str) -> tuple[str, int]:
    if part.startswith("["):
        host, _, port = part[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = part.rpartition(":") if ":" in part else (part, "", "")
    if not host:
        raise ValueError(f"bad Sentinel address {part!r}")
    try:
        return host, int(port) if port else DEFAULT_SENTINEL_PORT
    except ValueError:
        raise ValueError(f"bad Sentinel port in {part!r}") from None


class _SentinelPool(SentinelConnectionPool):
    """A primary's pool that also closes its Sentinel connections when it is closed for good
    (a switch of primary disconnects idle connections only and keeps the Sentinels)."""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        if inuse_connections:
            for sentinel in self.sentinel_manager.sentinels:
                await sentinel.aclose()


def connection_pool(settings: Settings, **options: Any) -> ConnectionPool:
    """A pool of connections to the current primary; lazy, so no round trip happens here and a
    process starts (and answers 503) while Redis is down."""
    if not settings.redis_url:
        raise RuntimeError("JOBRELAY_REDIS_URL is not set")
    timeouts = {
        "socket_timeout": settings.redis_timeout,
        "socket_connect_timeout": settings.redis_timeout,
    }
    address = parse_redis_url(settings.redis_url)
    if not address.uses_sentinel:
        return ConnectionPool.from_url(address.url, **timeouts, **options)
    sentinels = Sentinel(list(address.sentinels), sentinel_kwargs=timeouts)  # type: ignore[no-untyped-call]
    return _SentinelPool(  # type: ignore[no-untyped-call]
        address.master_name,
        sentinels,
        db=address.db,
        username=address.username,
        password=address.password,
        **timeouts,
        **options,
    )


def client(settings: Settings) -> Redis:
    """The general client: pub/sub, rate limits, counters, readiness."""
    return Redis.from_pool(connection_pool(settings, health_check_interval=30))


def arq_pool(settings: Settings, queue_name: str) -> ArqRedis:
    """The queue's ARQ client; closing it closes its connections."""
    pool = ArqRedis(connection_pool(settings), default_queue_name=queue_name)
    pool.auto_close_connection_pool = True
    return pool


def arq_settings(settings: Settings) -> RedisSettings:
    """ARQ's own connection settings for the worker; ARQ follows Sentinels itself."""
    address = parse_redis_url(settings.redis_url)
    if address.uses_sentinel:
        base = RedisSettings(
            host=list(address.sentinels),
            sentinel=True,
            sentinel_master=address.master_name,
            database=address.db,
            username=address.username,
            password=address.password,
        )
    else:
        base = RedisSettings.from_dsn(address.url)
    base.conn_timeout = max(1, int(settings.redis_timeout))
    base.conn_retries = 1
    base.conn_retry_delay = 0
    return base
