"""Shared fixtures: a real PostgreSQL database and Redis db per run, and the real processes
(API, worker, reference generator) that the tests talk to over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from jobrelay.config import Settings
from jobrelay.db.migrate import upgrade
from jobrelay.services import Services
from jobrelay.users import service as users_service
from jobrelay.users.keys import new_webhook_secret
from jobrelay.users.schemas import UserCreate
from tests.support.backends import (
    Backends,
    RedisDbLease,
    clone_database,
    create_database,
    drop_database,
    find_backends,
)
from tests.support.processes import (
    Proc,
    api_process,
    base_env,
    generator_process,
    worker_process,
)


@pytest.fixture(scope="session")
def backends() -> Iterator[Backends]:
    found = find_backends()
    yield found
    found.stop()


@pytest.fixture(scope="session")
async def template_database(backends: Backends) -> AsyncIterator[str]:
    """A migrated, empty database that each stack's database is cloned from."""
    name, url = await create_database(backends.postgres_admin_url)
    await asyncio.to_thread(upgrade, url.replace("postgresql://", "postgresql+asyncpg://", 1))
    yield name
    await drop_database(backends.postgres_admin_url, name)


@pytest.fixture(scope="session")
async def database_url(backends: Backends, template_database: str) -> AsyncIterator[str]:
    name, url = await clone_database(backends.postgres_admin_url, template_database)
    yield url
    await drop_database(backends.postgres_admin_url, name)


@pytest.fixture(scope="session")
def redis_url(backends: Backends) -> Iterator[str]:
    lease = RedisDbLease(backends.redis_base_url)
    db = lease.acquire()
    yield lease.url(db)
    lease.release()


def fast_settings_env(database_url: str, redis_url: str) -> dict[str, str]:
    """The environment every process of a test stack gets: fast timings, private webhooks allowed."""
    return {
        "JOBRELAY_DATABASE_URL": database_url,
        "JOBRELAY_REDIS_URL": redis_url,
        "JOBRELAY_LEASE_SECONDS": "3",
        "JOBRELAY_RECONCILE_INTERVAL_SECONDS": "1",
        "JOBRELAY_OFFLINE_LLM_DELAY": "0",
        "JOBRELAY_PROMPT_STEP_DELAY": "0",
        "JOBRELAY_RETRY_BASE_DELAY": "0.1",
        "JOBRELAY_RETRY_MAX_DELAY": "1",
        "JOBRELAY_WEBHOOK_ALLOW_PRIVATE": "true",
        "JOBRELAY_INGEST_DELAY_PER_100": "0.02",
        "JOBRELAY_GENERATOR_SECRET": new_webhook_secret(),
        "JOBRELAY_AI_WORKER_TOKEN": "test-ai-worker-token",
        "JOBRELAY_GENERATOR_DELAY": "0.5",
        "JOBRELAY_GENERATOR_RETRIES": "2",
        "JOBRELAY_LOG_LEVEL": "INFO",
    }


@pytest.fixture(scope="session")
def settings_env(database_url: str, redis_url: str) -> dict[str, str]:
    return fast_settings_env(database_url, redis_url)


def settings_from_env(env: dict[str, str]) -> Settings:
    values = {
        k.removeprefix("JOBRELAY_").lower(): v for k, v in env.items() if k.startswith("JOBRELAY_")
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def settings(settings_env: dict[str, str]) -> Settings:
    return settings_from_env(settings_env)


@pytest.fixture(scope="session")
async def services(settings: Settings) -> AsyncIterator[Services]:
    opened = await Services.open(settings, pool_size=5)
    yield opened
    await opened.close()


async def create_admin_key(settings: Settings) -> str:
    opened = await Services.open(settings, pool_size=1)
    try:
        _, key = await users_service.create_user(
            opened, UserCreate(name="test-admin", role="admin", tokens=1_000_000)
        )
    finally:
        await opened.close()
    return key


@pytest.fixture(scope="session")
async def admin_key(settings: Settings) -> str:
    return await create_admin_key(settings)


@dataclass
class Stack:
    """The running service: API, worker and reference generator, all real processes."""

    env: dict[str, str]
    api: Proc
    workers: list[Proc]
    generator: Proc | None
    admin_key: str

    @property
    def api_url(self) -> str:
        assert self.api.url is not None
        return self.api.url

    @property
    def settings(self) -> Settings:
        return settings_from_env(self.env)

    def cli_env(self, api_key: str | None = None) -> dict[str, str]:
        return {
            **self.env,
            "JOBRELAY_API_URL": self.api_url,
            "JOBRELAY_API_KEY": api_key or self.admin_key,
        }


def start_stack(
    env: dict[str, str], admin_key: str, *, workers: int = 1, generator: bool = True
) -> Stack:
    env = dict(env)
    gen = None
    if generator:
        gen = generator_process(base_env(env)).start()
        gen.wait_http("/health")  # moves to another port if its first one was taken meanwhile
        env["JOBRELAY_GENERATOR_URL"] = gen.url or ""
    api = api_process(base_env({**env, "JOBRELAY_PUBLIC_URL": ""})).start()
    api.wait_http("/healthz")
    env["JOBRELAY_PUBLIC_URL"] = api.url or ""
    api.env["JOBRELAY_PUBLIC_URL"] = api.url or ""
    worker_procs = [worker_process(base_env(env)).start() for _ in range(workers)]
    return Stack(env=env, api=api, workers=worker_procs, generator=gen, admin_key=admin_key)


def stop_stack(stack: Stack) -> None:
    for proc in [*stack.workers, stack.api, *([stack.generator] if stack.generator else [])]:
        proc.stop()


@pytest.fixture(scope="session")
def stack(settings_env: dict[str, str], admin_key: str) -> Iterator[Stack]:
    running = start_stack(settings_env, admin_key)
    yield running
    stop_stack(running)


@pytest.fixture
async def spawn_stack(
    backends: Backends, template_database: str
) -> AsyncIterator[Callable[..., Awaitable[Stack]]]:
    """Start an extra stack with its own database and Redis db and different settings (e.g. a
    low rate limit), so settings of one stack never leak into another; stopped after the test."""
    started: list[tuple[Stack, str, RedisDbLease]] = []

    async def spawn(*, workers: int = 1, generator: bool = False, **overrides: str) -> Stack:
        name, url = await clone_database(backends.postgres_admin_url, template_database)
        lease = RedisDbLease(backends.redis_base_url)
        redis_db_url = lease.url(lease.acquire())
        env = {
            **fast_settings_env(url, redis_db_url),
            **{f"JOBRELAY_{k.upper()}": str(v) for k, v in overrides.items()},
        }
        key = await create_admin_key(settings_from_env(env))
        running = await asyncio.to_thread(
            start_stack, env, key, workers=workers, generator=generator
        )
        started.append((running, name, lease))
        return running

    yield spawn
    for running, name, lease in started:
        await asyncio.to_thread(stop_stack, running)
        await drop_database(backends.postgres_admin_url, name)
        lease.release()


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=stack.api_url,
        headers={"Authorization": f"Bearer {stack.admin_key}"},
        timeout=30,
    ) as http:
        yield http


@dataclass
class TestUser:
    id: int
    name: str
    role: str
    key: str
    client: httpx.AsyncClient
    body: dict[str, Any] = field(default_factory=dict)


MakeUser = Callable[..., Awaitable[TestUser]]


@pytest.fixture
async def make_user(stack: Stack) -> AsyncIterator[MakeUser]:
    """Create a user through the admin API; returns it with a client that holds its key."""
    made: list[httpx.AsyncClient] = []
    counter = 0

    async def make(
        *, role: str = "user", tokens: int = 10_000, on: Stack | None = None, **extra: Any
    ) -> TestUser:
        nonlocal counter
        counter += 1
        target = on or stack
        async with httpx.AsyncClient(
            base_url=target.api_url, headers={"Authorization": f"Bearer {target.admin_key}"}
        ) as admin:
            response = await admin.post(
                "/v1/users",
                json={"name": f"user-{counter}", "role": role, "tokens": tokens, **extra},
            )
        assert response.status_code == 201, response.text
        body = response.json()
        http = httpx.AsyncClient(
            base_url=target.api_url,
            headers={"Authorization": f"Bearer {body['api_key']}"},
            timeout=30,
        )
        made.append(http)
        return TestUser(
            id=body["user"]["id"],
            name=body["user"]["name"],
            role=role,
            key=body["api_key"],
            client=http,
            body=body,
        )

    yield make
    for http in made:
        await http.aclose()
