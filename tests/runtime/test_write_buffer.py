"""The worker's write buffer on real PostgreSQL and Redis: many jobs' claims, steps and endings
share flushes, yet each job keeps its order, its fence and its token charge, and a flush cut by
a PostgreSQL restart writes everything once."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import asyncpg
import pytest
from redis.exceptions import RedisError

from jobrelay.broadcast import CHANNEL_PREFIX, Command, channel
from jobrelay.config import Settings
from jobrelay.db import batch as batch_db
from jobrelay.db.migrate import upgrade
from jobrelay.runtime import runner
from jobrelay.runtime.context import RunContext
from jobrelay.runtime.errors import JobGone
from jobrelay.runtime.output import LiveOutput, meta_key, read_snapshot, text_key
from jobrelay.runtime.process import runtime_of
from jobrelay.runtime.registry import KindRunner, Outcome
from jobrelay.runtime.writes import ClaimOutcome, EndOutcome
from jobrelay.services import Services
from tests.conftest import fast_settings_env, settings_from_env
from tests.reliability.servers import PrivatePostgres
from tests.support.backends import Backends, clone_database, drop_database

STEPS = (20, 40, 60, 80)
START = json.dumps({"prompt.generate": [10, "Job started"]})


async def _add_jobs(
    url: str, count: int, *, users: int, tokens: int = 1_000_000
) -> list[uuid.UUID]:
    """`count` queued jobs spread over `users` new users (admins: no running limit)."""
    conn = await asyncpg.connect(url)
    try:
        user_ids = [
            await conn.fetchval(
                "INSERT INTO users (name, role, tokens, webhook_secret) "
                "VALUES ($1, 'admin', $2, 'whsec_x') RETURNING id",
                f"u{i}",
                tokens,
            )
            for i in range(users)
        ]
        ids = [uuid.uuid4() for _ in range(count)]
        await conn.execute(
            "INSERT INTO jobs (id, kind, status, progress, message, user_id, input, "
            "deadline_seconds, max_attempts) "
            "SELECT id, 'prompt.generate', 'queued', 0, 'queued', u, '{}'::jsonb, 600, 3 "
            "FROM unnest($1::uuid[], $2::bigint[]) AS t(id, u)",
            ids,
            [user_ids[i % users] for i in range(count)],
        )
        return ids
    finally:
        await conn.close()


async def _events(url: str) -> dict[uuid.UUID, list[asyncpg.Record]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT * FROM job_events ORDER BY id")
    finally:
        await conn.close()
    by_job: dict[uuid.UUID, list[asyncpg.Record]] = defaultdict(list)
    for row in rows:
        by_job[row["job_id"]].append(row)
    return by_job


async def _fetch(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


@pytest.fixture
async def database(backends: Backends, template_database: str) -> AsyncIterator[str]:
    name, url = await clone_database(backends.postgres_admin_url, template_database)
    yield url
    await drop_database(backends.postgres_admin_url, name)


def _settings(database_url: str, redis_url: str, **overrides: str) -> Settings:
    env = fast_settings_env(database_url, redis_url)
    env.update({f"JOBRELAY_{k.upper()}": v for k, v in overrides.items()})
    return settings_from_env(env)


async def _steps_then_complete(ctx: RunContext) -> Outcome:
    for progress in STEPS:
        if random.random() < 0.5:
            await asyncio.sleep(random.random() * 0.01)
        await ctx.progress(progress, f"step {progress}")
    return Outcome(result={"ok": True}, charge_tokens=1)


async def test_a_burst_of_2000_jobs_keeps_every_event_in_order(
    database: str, redis_url: str
) -> None:
    services = await Services.open(_settings(database, redis_url, lease_seconds="30"))
    ids = await _add_jobs(database, 2000, users=20)
    registry = {"prompt.generate": KindRunner(_steps_then_complete, 10, "Job started")}
    listener = services.redis.pubsub()
    await listener.psubscribe(f"{CHANNEL_PREFIX}*")
    published: dict[str, list[int]] = defaultdict(list)
    wanted = {str(job_id) for job_id in ids}

    async def listen() -> None:
        async for message in listener.listen():
            if message["type"] == "pmessage":
                event = json.loads(message["data"])
                # Pub/sub spans Redis dbs: other tests' jobs, and their live output (no id).
                if event.get("id") is not None and event.get("job_id") in wanted:
                    published[event["job_id"]].append(event["id"])

    listening = asyncio.create_task(listen())
    try:
        results = await asyncio.gather(
            *(runner.run(services, registry, job_id, delivery=1) for job_id in ids)
        )
        assert results == [None] * len(ids)
        flushes = runtime_of(services).writes.flushes
        assert flushes < 600, flushes  # shared: far fewer flushes than the 6000 writes
        events = await _events(database)
        for job_id in ids:
            mine = events[job_id]
            assert [e["progress"] for e in mine] == [10, *STEPS, 100], mine
            assert [e["type"] for e in mine] == ["status", *["progress"] * len(STEPS), "status"]
            assert [e["status"] for e in mine][-1] == "completed"
        balances = await _fetch(database, "SELECT sum(1000000 - tokens) AS spent FROM users")
        assert balances[0]["spent"] == len(ids)  # one token per job, charged once
        deadline = asyncio.get_running_loop().time() + 60
        while sum(len(v) for v in published.values()) < 6 * len(ids):
            assert asyncio.get_running_loop().time() < deadline, "events not all published"
            await asyncio.sleep(0.05)
        for job_id in ids:
            assert published[str(job_id)] == [e["id"] for e in events[job_id]]
    finally:
        listening.cancel()
        await listener.aclose()
        await services.close()


async def test_a_stale_attempt_is_dropped_and_the_rest_of_its_flush_commits(
    database: str, redis_url: str
) -> None:
    services = await Services.open(_settings(database, redis_url))
    try:
        ids = await _add_jobs(database, 6, users=2, tokens=10)
        writes = runtime_of(services).writes
        claims = await asyncio.gather(*(writes.claim(job_id, START) for job_id in ids))
        assert all(c.outcome is ClaimOutcome.CLAIMED for c in claims)
        stale = ids[2]
        # Another attempt takes the job over (its lease ran out and another worker claimed it).
        await _fetch(database, "UPDATE jobs SET attempts = attempts + 1 WHERE id = $1", stale)

        before = writes.flushes
        ops = {}
        for job_id in ids:
            op = writes.step(None, job_id, 1, (50, "half way", None))
            ending = batch_db.Ending(job_id, 1, "completed", "done", result={"n": 1}, charge=3)
            ops[job_id] = (op.future, writes.end(ending, after=[op.future]))
        outcomes = {}
        for job_id, (step, end) in ops.items():
            await asyncio.wait([step])
            outcomes[job_id] = (step.exception(), await end if step.exception() is None else None)
        assert writes.flushes == before + 1  # one flush for all of them

        assert isinstance(outcomes[stale][0], JobGone)
        rows = {r["id"]: r for r in await _fetch(database, "SELECT * FROM jobs")}
        assert rows[stale]["status"] == "processing" and rows[stale]["progress"] == 10
        others = [j for j in ids if j != stale]
        ended = {j: outcomes[j][1] for j in others}
        # 10 tokens each for two users, 3 per completion: each user affords three of its jobs.
        users = {j: rows[j]["user_id"] for j in others}
        for job_id in others:
            result = ended[job_id]
            assert result is not None and result.outcome in (
                EndOutcome.ENDED,
                EndOutcome.INSUFFICIENT_TOKENS,
            )
            expected = "completed" if result.outcome is EndOutcome.ENDED else "failed"
            assert rows[job_id]["status"] == expected
        spent = await _fetch(database, "SELECT id, 10 - tokens AS spent FROM users")
        completed_per_user: dict[int, int] = defaultdict(int)
        for job_id in others:
            if rows[job_id]["status"] == "completed":
                completed_per_user[users[job_id]] += 1
        for row in spent:
            assert row["spent"] == 3 * completed_per_user[row["id"]]
        events = await _events(database)
        assert [e["progress"] for e in events[stale]] == [10]
        for job_id in others:
            assert [e["progress"] for e in events[job_id]][:2] == [10, 50]
            assert len(events[job_id]) == 3
    finally:
        await services.close()


@pytest.mark.timeout(180)
async def test_a_flush_cut_by_a_postgres_restart_loses_and_duplicates_nothing(
    redis_url: str,
) -> None:
    server = PrivatePostgres()
    server.start()
    services = None
    try:
        await asyncio.to_thread(upgrade, server.url)
        url = server.url.replace("postgresql+asyncpg://", "postgresql://", 1)
        services = await Services.open(_settings(server.url, redis_url, write_retry_seconds="60"))
        writes = runtime_of(services).writes
        ids = await _add_jobs(url, 300, users=3)
        claims = await asyncio.gather(*(writes.claim(job_id, START) for job_id in ids))
        assert all(c.outcome is ClaimOutcome.CLAIMED for c in claims)

        async def finish(job_id: uuid.UUID, delay: float) -> Any:
            await asyncio.sleep(delay)
            op = None
            for progress in STEPS:
                op = writes.step(op, job_id, 1, (progress, f"step {progress}", None))
            ending = batch_db.Ending(job_id, 1, "completed", "done", result={}, charge=1)
            return await writes.end(ending, after=[op.future])

        # The jobs finish over 0.3 s; PostgreSQL goes down in the middle of it (a fast
        # shutdown cuts the connection of the flush in flight) and comes back a second later.
        running = asyncio.gather(*(finish(j, i * 0.001) for i, j in enumerate(ids)))
        await asyncio.sleep(0.15)
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(server.start)
        results = await running
        assert all(r.outcome in (EndOutcome.ENDED, EndOutcome.UNKNOWN) for r in results)

        events = await _events(url)
        for job_id in ids:
            assert [e["progress"] for e in events[job_id]] == [10, *STEPS, 100]
        rows = await _fetch(url, "SELECT status, count(*) AS n FROM jobs GROUP BY status")
        assert {r["status"]: r["n"] for r in rows} == {"completed": len(ids)}
        spent = await _fetch(url, "SELECT sum(1000000 - tokens) AS spent FROM users")
        assert spent[0]["spent"] == len(ids)
    finally:
        if services is not None:
            await services.close()
        server.stop()


async def _write_words(ctx: RunContext) -> Outcome:
    for number in range(5):
        await ctx.output(f"w{number} ")
        await asyncio.sleep(0.01 * random.random())
    return Outcome(result={"ok": True})


async def test_live_output_goes_out_ahead_of_the_ending_and_costs_no_transaction(
    database: str, redis_url: str
) -> None:
    services = await Services.open(_settings(database, redis_url))
    ids = await _add_jobs(database, 40, users=4)
    listener = services.redis.pubsub()
    await listener.psubscribe(f"{CHANNEL_PREFIX}*")
    seen: dict[str, list[dict[str, Any]]] = defaultdict(list)
    wanted = {str(job_id) for job_id in ids}

    async def listen() -> None:
        async for message in listener.listen():
            if message["type"] == "pmessage":
                job_id = message["channel"].decode().removeprefix(CHANNEL_PREFIX)
                if job_id in wanted:
                    seen[job_id].append(json.loads(message["data"]))

    listening = asyncio.create_task(listen())
    try:
        writes = runtime_of(services).writes
        registry = {"prompt.generate": KindRunner(_write_words, 10, "Job started")}
        results = await asyncio.gather(
            *(runner.run(services, registry, job_id, delivery=1) for job_id in ids)
        )
        assert results == [None] * len(ids)
        flushes = writes.flushes
        await writes.redis([("SET", "jobrelay:test:alone", "1")])
        assert writes.flushes == flushes, "Redis commands alone open no transaction"
        assert await services.redis.get("jobrelay:test:alone") == b"1"

        deadline = asyncio.get_running_loop().time() + 30
        while not all(seen[j] and seen[j][-1].get("status") == "completed" for j in wanted):
            assert asyncio.get_running_loop().time() < deadline, "not all published"
            await asyncio.sleep(0.05)
        full = "".join(f"w{number} " for number in range(5))
        for job_id in wanted:
            text = ""
            for message in seen[job_id]:
                if message["type"] == "output":
                    assert message["data"]["offset"] == len(text), "in order, none missing"
                    text += message["data"]["text"]
                elif message.get("status") == "completed":
                    assert text == full, "all the output is out before the job ends"
        for job_id in ids:  # the live copies are cleared once the jobs ended
            while await read_snapshot(services.redis, job_id) is not None:
                assert asyncio.get_running_loop().time() < deadline, "live copy left behind"
                await asyncio.sleep(0.05)
    finally:
        listening.cancel()
        await listener.aclose()
        await services.close()


async def test_an_output_send_that_failed_is_sent_again_whole(services: Services) -> None:
    redis = services.redis
    real = runtime_of(services).writes.redis
    failures = [RedisError("connection lost")]

    def send(commands: list[Command]) -> Awaitable[None]:
        if failures:
            failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            failed.set_exception(failures.pop())
            return failed
        return real(commands)

    job_id = uuid.uuid4()
    listener = redis.pubsub()
    await listener.subscribe(channel(job_id))
    try:
        output = LiveOutput(send, job_id, 1, max_chars=1000, ttl_seconds=60)
        output.append("one ")
        await output.flush()  # lost
        output.append("two")
        await output.flush()
        await output.sent()
        snapshot = await read_snapshot(redis, job_id)
        assert snapshot is not None and (snapshot.start, snapshot.text) == (0, "one two")
        text = ""
        deadline = asyncio.get_running_loop().time() + 10
        while text != "one two":
            assert asyncio.get_running_loop().time() < deadline, f"published: {text!r}"
            message = await listener.get_message(ignore_subscribe_messages=True, timeout=1)
            if message is None:  # the subscription's confirmation, or nothing yet
                continue
            piece = json.loads(message["data"])["data"]
            assert piece["offset"] <= len(text), "no gap"
            text = text[: piece["offset"]] + piece["text"]
    finally:
        await listener.aclose()
        await redis.delete(text_key(job_id), meta_key(job_id))
