"""The workers' periodic work, run once through `jobrelay maintenance ...`: purge by retention,
daily stats, deadline reaping, reconciling with Redis, and the generator's health check."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
import redis.asyncio as aioredis
from arq.constants import job_key_prefix

from tests.conftest import Stack
from tests.maintenance.conftest import Scratch
from tests.support.processes import base_env, run_cli

OLD = dt.timedelta(days=40)


async def _noon(scratch: Scratch, *, days_ago: int) -> dt.timedelta:
    """How long ago noon (UTC) was `days_ago` days back: a day the test means, at any hour."""
    now = (await scratch.fetch("SELECT now() AS t"))[0]["t"]
    day = now.astimezone(dt.UTC).date() - dt.timedelta(days=days_ago)
    return now - dt.datetime.combine(day, dt.time(12), dt.UTC)


async def test_purge_drops_old_finished_jobs_and_keeps_user_data(scratch: Scratch) -> None:
    user = await scratch.user()
    old = await scratch.job(user, status="completed", kind="quiz.generate", age=OLD)
    old_failed = await scratch.job(user, status="failed", age=OLD)
    recent = await scratch.job(user, status="completed", age=dt.timedelta(days=2))
    old_but_active = await scratch.job(user, status="queued", age=OLD)
    await scratch.execute(
        "INSERT INTO questions (job_id, user_id, position, sentence, option_a, option_b, "
        "option_c, option_d, correct_answer) "
        "SELECT $1, $2, p, 'Q', 'a', 'b', 'c', 'd', 'A' FROM generate_series(1, 3) AS p",
        old,
        user,
    )
    await scratch.execute(
        "INSERT INTO students (student_id, first_name, last_name, email, grade, date_of_birth, "
        "school_id, last_job_id) VALUES ('kept-1', 'A', 'B', 'a@b.example', 3, '2015-01-01', "
        "'s1', $1)",
        old,
    )
    await scratch.execute(
        "INSERT INTO webhook_deliveries (job_id, webhook_id, event_type, url, attempt, outcome, "
        "payload) VALUES ($1, 'msg_1', 'completed', 'http://example.com', 1, 'delivered', '{}')",
        old,
    )
    await scratch.execute(
        "INSERT INTO callbacks (job_id, route, body, outcome, status_code, received_at) "
        "VALUES ($1, '/v1/callbacks/x', '{}', 'applied', 201, now() - interval '40 days'), "
        "       (NULL, '/api/ai/receive/', '{}', 'job_not_found', 404, now() - interval '40 days'), "
        "       ($2, '/v1/callbacks/y', '{}', 'applied', 200, now())",
        old,
        recent,
    )

    report = scratch.cli_json("maintenance", "purge")

    assert (report["jobs"], report["events"], report["deliveries"], report["callbacks"]) == (
        2,
        4,
        1,
        2,
    )
    remaining = {r["id"] for r in await scratch.fetch("SELECT id FROM jobs")}
    assert remaining == {recent, old_but_active}
    questions = await scratch.fetch("SELECT job_id FROM questions")
    assert [q["job_id"] for q in questions] == [None, None, None]
    assert (await scratch.fetch("SELECT last_job_id FROM students"))[0]["last_job_id"] == old
    assert len(await scratch.fetch("SELECT 1 FROM callbacks")) == 1
    history = await scratch.fetch("SELECT kind, status, count FROM daily_stats")
    assert sorted((h["kind"], h["status"], h["count"]) for h in history) == [
        ("prompt.generate", "completed", 1),
        ("prompt.generate", "failed", 1),
        ("quiz.generate", "completed", 1),
    ]
    assert old_failed not in remaining
    assert scratch.cli_json("maintenance", "purge")["jobs"] == 0


async def test_purge_honours_the_retention_setting(scratch: Scratch) -> None:
    user = await scratch.user()
    five_days = await scratch.job(user, status="canceled", age=dt.timedelta(days=5))
    two_days = await scratch.job(user, status="completed", age=dt.timedelta(days=2))
    await scratch.job(user, status="completed", age=dt.timedelta(hours=1))
    assert scratch.cli_json("maintenance", "purge")["jobs"] == 0
    assert scratch.cli_json("maintenance", "purge", "--retention-days", "3")["jobs"] == 1
    done = scratch.cli("maintenance", "purge", "--json", JOBRELAY_RETENTION_DAYS="1")
    assert done.returncode == 0 and '"jobs": 1' in done.stdout
    remaining = {r["id"] for r in await scratch.fetch("SELECT id FROM jobs")}
    assert five_days not in remaining and two_days not in remaining and len(remaining) == 1


async def test_aggregate_writes_percentiles_per_day_kind_and_status(scratch: Scratch) -> None:
    user = await scratch.user()
    three_days = await _noon(scratch, days_ago=3)
    for seconds in (1.0, 2.0, 10.0):
        await scratch.job(user, status="completed", age=three_days, run_seconds=seconds)
    await scratch.job(user, status="failed", age=three_days, run_seconds=4.0)
    await scratch.job(
        user, status="completed", kind="records.ingest", age=await _noon(scratch, days_ago=2)
    )
    await scratch.job(user, status="completed")  # today: not over, not aggregated
    await scratch.job(user, status="processing", age=three_days)  # not terminal

    first = scratch.cli_json("maintenance", "aggregate")
    rows = await scratch.fetch(
        "SELECT day, kind, status, count, p50_seconds, p95_seconds FROM daily_stats "
        "ORDER BY day, kind, status"
    )
    today = (await scratch.fetch("SELECT (now() AT TIME ZONE 'UTC')::date AS d"))[0]["d"]
    assert first["rows"] == len(rows) == 3
    assert first["last"] == str(today - dt.timedelta(days=1))
    by_key = {(r["kind"], r["status"]): r for r in rows}
    completed = by_key[("prompt.generate", "completed")]
    assert completed["count"] == 3
    assert completed["p50_seconds"] == 2.0
    assert abs(completed["p95_seconds"] - 9.2) < 1e-6
    assert by_key[("prompt.generate", "failed")]["count"] == 1
    assert by_key[("records.ingest", "completed")]["count"] == 1
    assert all(r["day"] < today for r in rows)

    assert scratch.cli_json("maintenance", "aggregate")["rows"] == 3
    await scratch.job(
        user,
        status="completed",
        kind="records.ingest",
        age=await _noon(scratch, days_ago=2) + dt.timedelta(minutes=1),
    )
    scratch.cli_json("maintenance", "aggregate")
    ingest = await scratch.fetch(
        "SELECT count FROM daily_stats WHERE kind = 'records.ingest' AND status = 'completed'"
    )
    assert [r["count"] for r in ingest] == [2]


async def test_reap_fails_jobs_past_their_deadline(scratch: Scratch) -> None:
    user = await scratch.user()
    overdue = await scratch.job(
        user,
        status="processing",
        kind="quiz.generate",
        deadline_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5),
    )
    on_time = await scratch.job(
        user,
        status="processing",
        deadline_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5),
    )
    assert scratch.cli_json("maintenance", "reap") == {"timed_out": 1}
    rows = {r["id"]: r for r in await scratch.fetch("SELECT id, status, error::text FROM jobs")}
    assert rows[overdue]["status"] == "failed" and '"timeout"' in rows[overdue]["error"]
    assert rows[on_time]["status"] == "processing"
    events = await scratch.fetch(
        "SELECT status FROM job_events WHERE job_id = $1 ORDER BY id", overdue
    )
    assert [e["status"] for e in events][-1] == "failed"


async def test_reconcile_enqueues_a_queued_job_redis_does_not_hold(scratch: Scratch) -> None:
    user = await scratch.user()
    lost = await scratch.job(user, status="queued")
    redis = aioredis.Redis.from_url(scratch.env["JOBRELAY_REDIS_URL"])
    try:
        assert not await redis.exists(job_key_prefix + str(lost))
        report = scratch.cli_json("maintenance", "reconcile")
        assert report["requeued"] == 1
        assert await redis.exists(job_key_prefix + str(lost))
        assert scratch.cli_json("maintenance", "reconcile")["requeued"] == 0
    finally:
        await redis.aclose()


def test_maintenance_reports_unreachable_database(scratch: Scratch) -> None:
    done = scratch.cli(
        "maintenance", "reap", JOBRELAY_DATABASE_URL="postgresql://postgres@127.0.0.1:1/x"
    )
    assert done.returncode == 3, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_check_generator_needs_a_generator(scratch: Scratch) -> None:
    done = scratch.cli("maintenance", "check-generator")
    assert done.returncode == 2
    assert "JOBRELAY_GENERATOR_URL" in done.stderr


async def _generator_detail(stack: Stack, *, not_: str = "") -> dict[str, object]:
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        for _ in range(100):
            response = await http.get("/readyz")
            assert response.status_code == 200, response.text
            detail = response.json().get("details", {}).get("generator", {})
            if detail.get("status") not in (None, not_):
                return dict(detail)
            await asyncio.sleep(0.2)
    raise AssertionError(f"/readyz shows no generator check: {response.json()}")


def _check_generator(stack: Stack) -> tuple[int, str]:
    done = run_cli(["maintenance", "check-generator", "--json"], base_env(stack.env))
    return done.returncode, done.stdout + done.stderr


async def test_generator_health_shows_in_readyz_and_metrics(spawn_stack) -> None:
    stack: Stack = await spawn_stack(workers=1, generator=True)
    checked_by_the_worker = await _generator_detail(stack, not_="unknown")
    assert checked_by_the_worker["status"] in ("ok", "down")
    assert _check_generator(stack)[0] == 0
    assert (await _generator_detail(stack, not_="down"))["detail"] == "HTTP 200"
    assert stack.generator is not None
    stack.generator.stop()
    code, output = _check_generator(stack)
    assert code == 3 and '"ok": false' in output, output
    down = await _generator_detail(stack, not_="ok")
    assert down["status"] == "down" and "ConnectError" in str(down["detail"])
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        ready = await http.get("/readyz")
        metrics = await http.get("/metrics")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert "jobrelay_generator_up 0.0" in metrics.text
