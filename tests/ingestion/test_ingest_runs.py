"""The job body run by hand on a stack without workers: running it twice writes nothing new,
and a batch is rolled back with its progress step when the job is no longer ours."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from jobrelay.ingestion.tasks import RUNNER, ingest_records
from jobrelay.runtime.claim import Claim, claim_job
from jobrelay.runtime.context import RunContext
from jobrelay.runtime.errors import JobGone
from jobrelay.services import Services
from tests.conftest import MakeUser, Stack
from tests.ingestion.factories import new_prefix, with_invalid
from tests.ingestion.helpers import events_of, stored_students
from tests.support.jobs import submit


@pytest.fixture
async def idle(
    spawn_stack: Callable[..., Awaitable[Stack]],
) -> AsyncIterator[tuple[Stack, Services]]:
    stack = await spawn_stack(workers=0)
    services = await Services.open(stack.settings, pool_size=4)
    yield stack, services
    await services.close()


async def claimed(services: Services, job_id: str) -> Claim:
    claim = await claim_job(services, uuid.UUID(job_id), RUNNER)
    assert isinstance(claim, Claim), claim
    return claim


async def test_running_the_body_twice_stores_the_same_rows_and_result(
    idle: tuple[Stack, Services], make_user: MakeUser
) -> None:
    stack, services = idle
    user = await make_user(on=stack)
    prefix = new_prefix()
    records, _ = with_invalid(prefix, 230, [3, 117])
    job = await submit(user.client, "records.ingest", {"records": records})
    claim = await claimed(services, job["id"])

    first = await ingest_records(RunContext(services, claim.job))
    stored = await stored_students(services, prefix)
    second = await ingest_records(RunContext(services, claim.job))

    assert first.result is not None and second.result is not None
    assert first.result["processed_records"] == 228
    assert {k: v for k, v in second.result.items() if k != "duration"} == {
        k: v for k, v in first.result.items() if k != "duration"
    }
    assert await stored_students(services, prefix) == stored
    progress = [e for e in await events_of(user.client, job["id"]) if e["type"] == "progress"]
    assert [e["data"]["inserted_records"] for e in progress] == [99, 198, 228, 0, 0, 0]
    assert progress[-1]["data"]["unchanged_records"] == 228


async def test_a_batch_is_not_written_when_the_job_was_canceled(
    idle: tuple[Stack, Services], make_user: MakeUser
) -> None:
    stack, services = idle
    user = await make_user(on=stack)
    prefix = new_prefix()
    records, _ = with_invalid(prefix, 150, [])
    job = await submit(user.client, "records.ingest", {"records": records})
    claim = await claimed(services, job["id"])
    canceled = await user.client.post(f"/v1/jobs/{job['id']}/cancel")
    assert canceled.status_code == 200, canceled.text

    with pytest.raises(JobGone):
        await ingest_records(RunContext(services, claim.job))
    assert await stored_students(services, prefix) == {}
    assert [e for e in await events_of(user.client, job["id"]) if e["type"] == "progress"] == []
