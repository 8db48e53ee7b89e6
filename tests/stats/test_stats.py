"""`GET /v1/stats`: counts per kind and status, p50/p95 durations, queue depth; exact for a
user's own jobs, and for admins the sum of `daily_stats` history and live counts."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
from sqlalchemy import delete, func, insert, select

from jobrelay.db import stats as stats_db
from jobrelay.db.models import daily_stats_table as daily
from jobrelay.db.models import jobs_table as jobs
from jobrelay.services import Services
from tests.conftest import MakeUser
from tests.support.jobs import prompt_input, submit, wait_for_status

KINDS = {"prompt.generate", "quiz.generate", "records.ingest"}
STATUSES = {"queued", "processing", "completed", "failed", "canceled"}


async def stats(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/stats", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def direct_counts(services: Services) -> dict[tuple[str, str], int]:
    async with services.engine.connect() as conn:
        rows = await conn.execute(
            select(jobs.c.kind, jobs.c.status, func.count()).group_by(jobs.c.kind, jobs.c.status)
        )
    return {(kind, status): int(count) for kind, status, count in rows}


def flatten(body: dict[str, Any]) -> dict[tuple[str, str], int]:
    return {
        (kind, status): count
        for kind, per_status in body["jobs"].items()
        for status, count in per_status.items()
        if count
    }


async def stable_admin_stats(
    client: httpx.AsyncClient, services: Services, **params: Any
) -> tuple[dict[str, Any], dict[tuple[str, str], int]]:
    """Stats read between two identical direct counts, so no job moved in between."""
    for _ in range(50):
        before = await direct_counts(services)
        body = await stats(client, **params)
        if await direct_counts(services) == before:
            return body, before
        await asyncio.sleep(0.2)
    raise AssertionError("jobs kept moving")


async def test_a_user_sees_exact_counts_of_its_own_jobs(make_user: MakeUser) -> None:
    user = await make_user()
    poor = await make_user(tokens=0)
    done = [await submit(user.client, "prompt.generate", prompt_input()) for _ in range(3)]
    failed = await submit(poor.client, "prompt.generate", prompt_input())
    for job in done:
        await wait_for_status(user.client, job["id"], "completed")
    await wait_for_status(poor.client, failed["id"], "failed")

    body = await stats(user.client, days=7)
    assert body["scope"] == "own"
    assert set(body["jobs"]) == KINDS
    assert all(set(per_status) == STATUSES for per_status in body["jobs"].values())
    assert flatten(body) == {("prompt.generate", "completed"): 3}
    assert body["by_status"] == {
        "queued": 0, "processing": 0, "completed": 3, "failed": 0, "canceled": 0,
    }  # fmt: skip
    assert body["total"] == 3
    assert body["queue_depth"] == 0 and body["running"] == 0
    durations = body["durations"]["prompt.generate"]
    assert durations["samples"] == 3
    assert 0 <= durations["p50"] <= durations["p95"]
    assert body["overall"] == durations
    assert body["durations"]["quiz.generate"] == {"p50": None, "p95": None, "samples": 0}
    assert body["history"] == []
    assert body["generated_at"].endswith("Z")

    poor_stats = await stats(poor.client)
    assert flatten(poor_stats) == {("prompt.generate", "failed"): 1}
    assert poor_stats["overall"]["samples"] == 0


async def test_queue_depth_counts_jobs_waiting(make_user: MakeUser, spawn_stack: Any) -> None:
    idle = await spawn_stack(workers=0)
    user = await make_user(on=idle)
    for _ in range(4):
        await submit(user.client, "prompt.generate", prompt_input())
    body = await stats(user.client)
    assert body["queue_depth"] == 4 and body["by_status"]["queued"] == 4
    admin = httpx.AsyncClient(
        base_url=idle.api_url, headers={"Authorization": f"Bearer {idle.admin_key}"}
    )
    async with admin:
        everything = await stats(admin)
    assert everything["scope"] == "all"
    assert everything["queue_depth"] == 4


async def test_admin_stats_match_the_jobs_table(
    client: httpx.AsyncClient, make_user: MakeUser, services: Services
) -> None:
    user = await make_user()
    job = await submit(user.client, "prompt.generate", prompt_input())
    await wait_for_status(user.client, job["id"], "completed")
    body, counted = await stable_admin_stats(client, services)
    assert body["scope"] == "all"
    assert flatten(body) == counted
    assert body["total"] == sum(counted.values())
    assert body["by_status"]["completed"] == sum(
        n for (_, status), n in counted.items() if status == "completed"
    )
    assert body["overall"]["samples"] >= 1


async def test_admin_stats_add_history_from_daily_stats(
    client: httpx.AsyncClient, services: Services
) -> None:
    """Days in `daily_stats` count from there; days after them from `jobs` (no double count)."""
    long_ago = dt.date(2001, 2, 3)
    async with services.engine.begin() as conn:
        await conn.execute(
            insert(daily).values(
                [
                    {
                        "day": long_ago,
                        "kind": "prompt.generate",
                        "status": "completed",
                        "count": 1000,
                        "p50_seconds": 1.5,
                        "p95_seconds": 9.0,
                    },
                    {
                        "day": long_ago,
                        "kind": "records.ingest",
                        "status": "failed",
                        "count": 7,
                        "p50_seconds": None,
                        "p95_seconds": None,
                    },
                    # Active statuses are always counted live, never from history.
                    {
                        "day": long_ago,
                        "kind": "prompt.generate",
                        "status": "queued",
                        "count": 50,
                        "p50_seconds": None,
                        "p95_seconds": None,
                    },
                ]
            )
        )
    try:
        body, counted = await stable_admin_stats(client, services)
        expected = dict(counted)
        expected[("prompt.generate", "completed")] = (
            counted.get(("prompt.generate", "completed"), 0) + 1000
        )
        expected[("records.ingest", "failed")] = counted.get(("records.ingest", "failed"), 0) + 7
        assert flatten(body) == expected
    finally:
        async with services.engine.begin() as conn:
            await conn.execute(delete(daily).where(daily.c.day == long_ago))


async def test_history_lists_recent_aggregated_days(
    client: httpx.AsyncClient, make_user: MakeUser, services: Services
) -> None:
    async with services.engine.connect() as conn:
        today = await stats_db.today(conn)
    recent = today - dt.timedelta(days=3)
    async with services.engine.begin() as conn:
        await conn.execute(
            insert(daily).values(
                day=recent,
                kind="quiz.generate",
                status="completed",
                count=12,
                p50_seconds=31.5,
                p95_seconds=80.25,
            )
        )
    try:
        body = await stats(client, days=7)
        assert {
            "day": recent.isoformat(), "kind": "quiz.generate", "status": "completed",
            "count": 12, "p50_seconds": 31.5, "p95_seconds": 80.25,
        } in body["history"]  # fmt: skip
        assert (await stats(client))["history"] == []
        user = await make_user()
        assert (await stats(user.client, days=7))["history"] == []
    finally:
        async with services.engine.begin() as conn:
            await conn.execute(delete(daily).where(daily.c.day == recent))


async def test_aggregation_writes_what_the_jobs_table_holds(
    make_user: MakeUser, services: Services
) -> None:
    user = await make_user()
    job = await submit(user.client, "prompt.generate", prompt_input())
    await wait_for_status(user.client, job["id"], "completed")
    async with services.engine.connect() as conn, conn.begin() as transaction:
        today = await stats_db.today(conn)
        expected = {
            (kind, status): int(count)
            for kind, status, count in await conn.execute(
                select(jobs.c.kind, jobs.c.status, func.count())
                .where(jobs.c.status.in_(stats_db.TERMINAL))
                .where(jobs.c.created_at >= dt.datetime.combine(today, dt.time(), dt.UTC))
                .group_by(jobs.c.kind, jobs.c.status)
            )
        }
        written = await stats_db.aggregate_days(conn, today, today)
        rows = (await conn.execute(select(daily).where(daily.c.day == today))).all()
        await stats_db.aggregate_days(conn, today, today)
        again = (await conn.execute(select(daily).where(daily.c.day == today))).all()
        await transaction.rollback()
    assert written == len(rows) == len(expected)
    assert {(r.kind, r.status): r.count for r in rows} == expected
    completed = next(r for r in rows if (r.kind, r.status) == ("prompt.generate", "completed"))
    assert 0 <= completed.p50_seconds <= completed.p95_seconds
    assert len(again) == len(rows), "aggregating a day twice replaces its rows"


async def test_stats_need_an_api_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/stats", headers={"Authorization": ""})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    bad = await client.get("/v1/stats", params={"days": 1000})
    assert bad.status_code == 422
