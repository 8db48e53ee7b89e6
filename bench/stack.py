"""A jobrelay deployment for one benchmark: a scratch database cloned from a migrated template,
a spare Redis database, the real `jobrelay api` / `jobrelay worker` processes, and users."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg
import redis.asyncio as aioredis

from bench.environment import (
    Backends,
    Proc,
    RedisLease,
    create_database,
    drop_database,
    jobrelay_api,
    jobrelay_worker,
    with_database,
)
from jobrelay.config import Settings
from jobrelay.db.migrate import upgrade
from jobrelay.services import Services
from jobrelay.users import service as users_service
from jobrelay.users.keys import new_webhook_secret
from jobrelay.users.schemas import UserCreate

# What every benchmark process runs with: the shipped defaults, except that the built-in
# offline model and the prompt steps take no time (the work itself is not what is measured).
BASE_ENV = {
    "JOBRELAY_OFFLINE_LLM_DELAY": "0",
    "JOBRELAY_PROMPT_STEP_DELAY": "0",
    "JOBRELAY_LOG_LEVEL": "WARNING",
}


@dataclass
class User:
    id: int
    key: str


@dataclass
class Stack:
    backends: Backends
    database: str
    dsn: str
    redis_url: str
    env: dict[str, str]
    lease: RedisLease
    api: Proc | None = None
    worker: Proc | None = None
    admin: User | None = None
    users: list[User] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        values = {
            k.removeprefix("JOBRELAY_").lower(): v
            for k, v in self.env.items()
            if k.startswith("JOBRELAY_")
        }
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    def start_api(self, *, wait: bool = True) -> Proc:
        """Start the API; with `wait=False` the caller waits (`wait_http`) after other setup."""
        self.api = jobrelay_api(self.env).start()
        if wait:
            self.api.wait_http("/healthz")
        return self.api

    async def start_worker(self, timeout: float = 30.0) -> Proc:
        """Start a worker and wait until ARQ has written its first health check."""
        self.worker = jobrelay_worker(self.env).start()
        key = f"{self.settings.queue_name}:health-check"
        client = aioredis.Redis.from_url(self.redis_url)
        try:
            deadline = time.monotonic() + timeout
            while not await client.exists(key):
                if not self.worker.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start:\n{self.worker.log()[-3000:]}")
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()
        return self.worker

    async def make_users(
        self, count: int, *, tokens: int = 10**12, role: str = "user"
    ) -> list[User]:
        services = await Services.open(self.settings, pool_size=2)
        made = []
        try:
            for i in range(count):
                body = UserCreate(name=f"bench-{role}-{i}", role=role, tokens=tokens)  # type: ignore[arg-type]
                user, key = await users_service.create_user(services, body)
                made.append(User(user.id, key))
        finally:
            await services.close()
        return made

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.dsn)

    def stop_processes(self) -> None:
        for proc in (self.worker, self.api):
            if proc is not None:
                proc.stop()
        self.worker = self.api = None


class Template:
    """One migrated database per run; every stack is a cheap clone of it."""

    def __init__(self, backends: Backends) -> None:
        self.backends = backends
        self.name: str | None = None

    async def ensure(self) -> str:
        if self.name is None:
            name = await create_database(self.backends.postgres_dsn)
            url = with_database(self.backends.postgres_dsn, name)
            await asyncio.to_thread(
                upgrade, url.replace("postgresql://", "postgresql+asyncpg://", 1)
            )
            self.name = name
        return self.name

    async def drop(self) -> None:
        if self.name is not None:
            await drop_database(self.backends.postgres_dsn, self.name)
            self.name = None


@asynccontextmanager
async def stack(
    template: Template, env: Mapping[str, str] | None = None, *, admin: bool = True
) -> AsyncIterator[Stack]:
    """A fresh database and Redis db with the given settings; everything removed afterwards."""
    backends = template.backends
    name = await create_database(backends.postgres_dsn, template=await template.ensure())
    dsn = with_database(backends.postgres_dsn, name)
    lease = RedisLease(backends.redis_base)
    redis_url = lease.acquire()
    full_env = {
        **BASE_ENV,
        "JOBRELAY_DATABASE_URL": dsn,
        "JOBRELAY_REDIS_URL": redis_url,
        "JOBRELAY_GENERATOR_SECRET": new_webhook_secret(),
        **(env or {}),
    }
    running = Stack(backends, name, dsn, redis_url, full_env, lease)
    try:
        if admin:
            running.admin = (await running.make_users(1, role="admin"))[0]
        yield running
    finally:
        running.stop_processes()
        await drop_database(backends.postgres_dsn, name)
        lease.release()
