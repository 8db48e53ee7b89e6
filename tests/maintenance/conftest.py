"""A database and Redis db of the test's own (cloned from the migrated template), with no
processes running: the maintenance and `db` commands are run against it as a CLI."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from tests.conftest import fast_settings_env
from tests.support.backends import Backends, RedisDbLease, clone_database, drop_database
from tests.support.processes import base_env, run_cli


@dataclass
class Scratch:
    env: dict[str, str]

    @property
    def dsn(self) -> str:
        return self.env["JOBRELAY_DATABASE_URL"]

    def cli(self, *args: str, **env: str) -> Any:
        return run_cli(list(args), base_env({**self.env, **env}))

    def cli_json(self, *args: str) -> Any:
        done = self.cli(*args, "--json")
        assert done.returncode == 0, done.stderr + done.stdout
        return json.loads(done.stdout)

    async def fetch(self, query: str, *args: Any) -> Sequence[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    async def execute(self, query: str, *args: Any) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.execute(query, *args)
        finally:
            await conn.close()

    async def user(self) -> int:
        rows = await self.fetch(
            "INSERT INTO users (name, role, tokens, webhook_secret) "
            "VALUES ('maintenance', 'user', 0, 'whsec_x') RETURNING id"
        )
        return int(rows[0]["id"])

    async def job(
        self,
        user_id: int,
        *,
        status: str,
        kind: str = "prompt.generate",
        age: dt.timedelta = dt.timedelta(0),
        run_seconds: float | None = 1.0,
        **values: Any,
    ) -> uuid.UUID:
        """A job created `age` ago; finished ones ran `run_seconds`."""
        job_id = uuid.uuid4()
        finished = status in ("completed", "failed", "canceled")
        await self.execute(
            """
            INSERT INTO jobs (id, kind, status, user_id, input, deadline_seconds, attempts,
                              created_at, updated_at, started_at, completed_at, deadline_at)
            VALUES ($1, $2, $3, $4, '{}', 900, 1,
                    now() - $5::interval, now() - $5::interval,
                    CASE WHEN $7 THEN now() - $5::interval END,
                    CASE WHEN $6 THEN now() - $5::interval
                                      + make_interval(secs => coalesce($8, 0)) END,
                    $9)
            """,
            job_id,
            kind,
            status,
            user_id,
            age,
            finished,
            run_seconds is not None and status != "queued",
            run_seconds,
            values.get("deadline_at"),
        )
        await self.execute(
            "INSERT INTO job_events (job_id, type, status, progress, attempt, at) "
            "VALUES ($1, 'status', 'queued', 0, 0, now() - $2::interval), "
            "       ($1, 'status', $3, 0, 1, now() - $2::interval)",
            job_id,
            age,
            status,
        )
        return job_id


@pytest.fixture
async def scratch(backends: Backends, template_database: str) -> AsyncIterator[Scratch]:
    name, url = await clone_database(backends.postgres_admin_url, template_database)
    lease = RedisDbLease(backends.redis_base_url)
    env = fast_settings_env(url, lease.url(lease.acquire()))
    env["JOBRELAY_GENERATOR_URL"] = ""
    yield Scratch(env)
    lease.release()
    await drop_database(backends.postgres_admin_url, name)
