"""Fixtures for the fault-injection suite: stacks of real processes (API, workers, reference
generator) on their own database and Redis, optionally on private servers the test may stop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jobrelay.db.migrate import upgrade
from tests.conftest import (
    Stack,
    create_admin_key,
    fast_settings_env,
    settings_from_env,
    start_stack,
    stop_stack,
)
from tests.reliability.sentinel import SentinelGroup
from tests.reliability.servers import PrivatePostgres, PrivateRedis
from tests.support.backends import Backends, RedisDbLease, clone_database, drop_database

FIGURES = Path(__file__).resolve().parents[2] / "test-artifacts" / "reliability.json"
MakeStack = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def make_stack(backends: Backends, template_database: str) -> AsyncIterator[MakeStack]:
    """Start a stack with JOBRELAY_* overrides; `redis=`/`postgres=` put it on private servers."""
    cleanup: list[Callable[[], Awaitable[None]]] = []

    async def make(
        *,
        workers: int = 2,
        generator: bool = True,
        redis: PrivateRedis | SentinelGroup | None = None,
        postgres: PrivatePostgres | None = None,
        **overrides: str,
    ) -> Stack:
        if postgres is not None:
            database_url = postgres.url
            await asyncio.to_thread(upgrade, database_url)
        else:
            name, database_url = await clone_database(
                backends.postgres_admin_url, template_database
            )

            async def drop(name: str = name) -> None:
                await drop_database(backends.postgres_admin_url, name)

            cleanup.append(drop)
        if redis is not None:
            redis_url = redis.url
        else:
            lease = RedisDbLease(backends.redis_base_url)
            redis_url = lease.url(lease.acquire())

            async def release(lease: RedisDbLease = lease) -> None:
                lease.release()

            cleanup.append(release)
        env = {
            **fast_settings_env(database_url, redis_url),
            **{f"JOBRELAY_{k.upper()}": str(v) for k, v in overrides.items()},
        }
        key = await create_admin_key(settings_from_env(env))
        stack = await asyncio.to_thread(start_stack, env, key, workers=workers, generator=generator)

        async def stop(stack: Stack = stack) -> None:
            await asyncio.to_thread(stop_stack, stack)

        cleanup.append(stop)
        return stack

    yield make
    for step in reversed(cleanup):
        await step()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    server.start()
    yield server
    server.stop()


def record_figures(scenario: str, figures: dict[str, Any]) -> None:
    """Keep a scenario's measured figures in test-artifacts/reliability.json (for the docs)."""
    FIGURES.parent.mkdir(exist_ok=True)
    try:
        stored = json.loads(FIGURES.read_text())
    except (OSError, ValueError):
        stored = {}
    stored[scenario] = figures
    FIGURES.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
    print(f"\n{scenario}: {json.dumps(figures, sort_keys=True)}")
