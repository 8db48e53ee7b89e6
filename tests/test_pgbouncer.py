"""API, worker and CLI behind a real PgBouncer in transaction mode (stock settings plus
`pool_mode = transaction`), with `JOBRELAY_DB_PGBOUNCER=true`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import fast_settings_env, start_stack, stop_stack
from tests.support.backends import Backends, RedisDbLease, clone_database, drop_database
from tests.support.pgbouncer import PgBouncer
from tests.support.processes import base_env, run_cli

PROMPT = {"kind": "prompt.generate", "input": {"manual_prompt": "Explain tides"}}


@pytest.fixture
async def bounced_env(
    backends: Backends, template_database: str
) -> AsyncIterator[tuple[dict[str, str], PgBouncer]]:
    """A fresh database and Redis db, the database reached only through PgBouncer."""
    bouncer = await asyncio.to_thread(PgBouncer(backends.postgres_admin_url).start)
    name, _ = await clone_database(backends.postgres_admin_url, template_database)
    lease = RedisDbLease(backends.redis_base_url)
    redis_url = lease.url(lease.acquire())
    env = fast_settings_env(bouncer.url(name), redis_url)
    try:
        yield env, bouncer
    finally:
        bouncer.stop()
        await drop_database(backends.postgres_admin_url, name)
        lease.release()


async def test_a_job_lives_its_whole_life_behind_pgbouncer(
    bounced_env: tuple[dict[str, str], PgBouncer],
) -> None:
    env, bouncer = bounced_env
    env = {**env, "JOBRELAY_DB_PGBOUNCER": "true", "JOBRELAY_PROMPT_STEP_DELAY": "0.2"}

    created = run_cli(
        ["users", "create", "ops", "--admin", "--tokens", "100000", "--json"], base_env(env)
    )
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)["api_key"]
    listed = run_cli(["users", "list", "--json"], base_env(env))
    assert listed.returncode == 0, listed.stderr
    assert [u["name"] for u in json.loads(listed.stdout)] == ["ops"]

    stack = await asyncio.to_thread(start_stack, env, key, workers=1, generator=False)
    try:
        async with httpx.AsyncClient(
            base_url=stack.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as http:
            # Several at once, so PgBouncer hands transactions of one client to several servers.
            finished = await asyncio.gather(
                *(
                    http.post("/v1/jobs", json=PROMPT, headers={"Prefer": "wait=45"})
                    for _ in range(6)
                )
            )
            for response in finished:
                assert response.status_code == 200, response.text
                assert response.json()["status"] == "completed", response.text
            job_id = finished[0].json()["id"]
            assert (await http.get(f"/v1/jobs/{job_id}")).json()["progress"] == 100
            result = await http.get(f"/v1/jobs/{job_id}/result")
            assert result.status_code == 200, result.text
            events = await http.get(
                f"/v1/jobs/{job_id}/events", headers={"Accept": "application/json"}
            )
            statuses = [event["status"] for event in events.json()["items"]]
            assert statuses[0] == "queued" and statuses[-1] == "completed", statuses
            listed_jobs = await http.get("/v1/jobs", params={"status": "completed"})
            assert len(listed_jobs.json()["items"]) == 6

            submitted = await http.post("/v1/jobs", json=PROMPT)
            assert submitted.status_code == 202, submitted.text
            canceled = await http.post(f"/v1/jobs/{submitted.json()['id']}/cancel")
            assert canceled.status_code == 200, canceled.text
            assert canceled.json()["status"] == "canceled"
            assert (await http.get("/readyz")).status_code == 200
    finally:
        await asyncio.to_thread(stop_stack, stack)
    logs = stack.api.log() + stack.workers[0].log() + bouncer.log()
    for trouble in ("prepared statement", "unsupported startup parameter", "Traceback"):
        assert trouble not in logs, logs[-4000:]


def test_without_the_setting_pgbouncer_refusal_is_one_clean_line(
    bounced_env: tuple[dict[str, str], PgBouncer],
) -> None:
    env, _ = bounced_env
    refused = run_cli(["users", "list"], base_env(env))
    assert refused.returncode == 3, refused.stderr
    assert "Traceback" not in refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), refused.stderr
    assert "JOBRELAY_DB_PGBOUNCER" in lines[0]
