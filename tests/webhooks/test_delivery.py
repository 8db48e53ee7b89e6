"""Outgoing webhooks end to end: API → outbox → worker → a real receiver on loopback, which
verifies every message with the `standardwebhooks` library and the owner's secret."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from jobrelay.db import deliveries as deliveries_db
from jobrelay.services import Services
from tests import conftest
from tests.conftest import MakeUser
from tests.support.jobs import prompt_input, submit, wait_for_status
from tests.webhooks.receiver import Received, Receiver

DELIVERY_FIELDS = {
    "id", "job_id", "webhook_id", "event_type", "url", "attempt", "outcome", "status_code",
    "error", "duration_ms", "attempted_at", "next_attempt_at",
}  # fmt: skip


async def secret_of(user: conftest.TestUser) -> str:
    response = await user.client.get("/v1/me/webhook-secret")
    assert response.status_code == 200
    secret: str = response.json()["secret"]
    assert secret.startswith("whsec_")
    return secret


def verified(secret: str, request: Received) -> dict[str, Any]:
    """The message, after `standardwebhooks` checked its signature and timestamp."""
    Webhook(secret).verify(request.body.decode(), request.headers)
    parsed: dict[str, Any] = json.loads(request.body)
    return parsed


async def deliveries(client: httpx.AsyncClient, job_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/jobs/{job_id}/deliveries")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def settled(client: httpx.AsyncClient, job_id: str, count: int) -> list[dict[str, Any]]:
    """The job's deliveries once `count` of them exist and none is waiting or in flight."""
    for _ in range(300):
        items = await deliveries(client, job_id)
        if len(items) >= count and all(i["outcome"] not in ("pending", "sending") for i in items):
            return items
        await asyncio.sleep(0.1)
    raise AssertionError(f"deliveries did not settle: {items}")


async def test_completed_job_sends_one_signed_webhook_with_the_job(
    make_user: MakeUser, receiver: Receiver
) -> None:
    user = await make_user()
    secret = await secret_of(user)
    job = await submit(
        user.client, "prompt.generate", prompt_input(), webhook=f"{receiver.url}/hook"
    )
    assert job["webhook_events_filter"] == ["completed"]
    [request] = await receiver.wait_for("/hook", 1)
    message = verified(secret, request)
    assert list(message) == ["type", "timestamp", "data"]
    assert message["type"] == "job.completed"
    assert message["timestamp"].endswith("Z")
    final = (await user.client.get(f"/v1/jobs/{job['id']}")).json()
    assert message["data"] == final
    assert list(message["data"]) == list(final)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"].startswith("msg_")
    assert request.headers["user-agent"].startswith("jobrelay-webhooks/")
    with pytest.raises(WebhookVerificationError):
        Webhook(await secret_of(await make_user())).verify(request.body.decode(), request.headers)

    [delivery] = await settled(user.client, job["id"], 1)
    assert set(delivery) == DELIVERY_FIELDS
    assert delivery["webhook_id"] == request.headers["webhook-id"]
    assert delivery["event_type"] == "job.completed"
    assert delivery["outcome"] == "delivered"
    assert delivery["status_code"] == 200
    assert delivery["attempt"] == 1
    assert delivery["url"] == f"{receiver.url}/hook"
    assert delivery["error"] is None and delivery["duration_ms"] >= 0
    assert delivery["attempted_at"] is not None and delivery["next_attempt_at"] is None
    await asyncio.sleep(1.0)
    assert len(receiver.at("/hook")) == 1


async def test_every_filter_event_arrives_signed(make_user: MakeUser, receiver: Receiver) -> None:
    user = await make_user()
    secret = await secret_of(user)
    job = await submit(
        user.client,
        "prompt.generate",
        prompt_input(),
        webhook=f"{receiver.url}/all",
        webhook_events_filter=["start", "progress", "completed"],
    )
    await wait_for_status(user.client, job["id"], "completed")
    items = await settled(user.client, job["id"], 2)
    requests = receiver.at("/all")
    assert len(requests) == len(items)
    messages = [verified(secret, r) for r in requests]
    types = sorted(m["type"] for m in messages)
    assert types.count("job.started") == 1 and types.count("job.completed") == 1
    # This job's steps take no time: its progress is coalesced into at most one message, and
    # one still waiting when the job ends is dropped (the ending carries the final state).
    assert types.count("job.progress") <= 1
    assert set(types) <= {"job.started", "job.progress", "job.completed"}
    started = next(m for m in messages if m["type"] == "job.started")
    assert started["data"]["status"] == "processing" and started["data"]["progress"] == 10
    assert len({r.headers["webhook-id"] for r in requests}) == len(requests)
    assert all(i["outcome"] == "delivered" for i in items)


async def test_progress_messages_are_at_least_500ms_apart(
    make_user: MakeUser, receiver: Receiver, spawn_stack: Any
) -> None:
    slow = await spawn_stack(prompt_step_delay="0.15")
    user = await make_user(on=slow)
    secret = await secret_of(user)
    job = await submit(
        user.client,
        "prompt.generate",
        prompt_input(),
        webhook=f"{receiver.url}/progress",
        webhook_events_filter=["progress"],
    )
    await wait_for_status(user.client, job["id"], "completed")
    events = (
        await user.client.get(
            f"/v1/jobs/{job['id']}/events", headers={"Accept": "application/json"}
        )
    ).json()["items"]
    progress_events = [e for e in events if e["type"] == "progress"]
    assert len(progress_events) == 4
    await settled(user.client, job["id"], 1)
    requests = receiver.at("/progress")
    messages = [verified(secret, r) for r in requests]
    assert messages and all(m["type"] == "job.progress" for m in messages)
    assert len(requests) < len(progress_events), "progress must be coalesced"
    gaps = [b.at - a.at for a, b in itertools.pairwise(requests)]
    assert all(gap >= 0.45 for gap in gaps), gaps
    shown = [m["data"]["progress"] for m in messages]
    assert shown == sorted(shown) and shown[0] == 30


async def test_failed_attempts_are_retried_with_the_same_webhook_id(
    make_user: MakeUser, receiver: Receiver
) -> None:
    user = await make_user()
    secret = await secret_of(user)
    receiver.script("/flaky", 500, 503)
    job = await submit(
        user.client, "prompt.generate", prompt_input(), webhook=f"{receiver.url}/flaky"
    )
    requests = await receiver.wait_for("/flaky", 3, timeout=30)
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    bodies = {r.body for r in requests}
    assert len(bodies) == 1, "a retry resends the same message"
    for request in requests:
        assert verified(secret, request)["type"] == "job.completed"
    assert all(b.at - a.at >= 0.9 for a, b in itertools.pairwise(requests))
    items = await settled(user.client, job["id"], 3)
    assert [i["attempt"] for i in items] == [1, 2, 3]
    assert [i["outcome"] for i in items] == ["failed", "failed", "delivered"]
    assert [i["status_code"] for i in items] == [500, 503, 200]
    assert "HTTP 500" in items[0]["error"]
    assert items[0]["next_attempt_at"] is not None and items[2]["next_attempt_at"] is None
    assert {i["webhook_id"] for i in items} == {requests[0].headers["webhook-id"]}
    await asyncio.sleep(2.5)
    assert len(receiver.at("/flaky")) == 3


async def test_410_stops_every_delivery_for_the_job(
    make_user: MakeUser, receiver: Receiver
) -> None:
    user = await make_user()
    receiver.script("/gone", 410)
    job = await submit(
        user.client, "prompt.generate", prompt_input(), webhook=f"{receiver.url}/gone"
    )
    await receiver.wait_for("/gone", 1)
    [gone] = await settled(user.client, job["id"], 1)
    assert gone["outcome"] == "gone" and gone["status_code"] == 410
    assert gone["next_attempt_at"] is None
    await asyncio.sleep(2.5)
    assert len(receiver.at("/gone")) == 1, "no retry after 410"


async def test_410_skips_later_messages_of_a_retried_job(
    make_user: MakeUser, receiver: Receiver
) -> None:
    user = await make_user(tokens=0)
    receiver.script("/retried", 410)
    job = await submit(
        user.client, "prompt.generate", prompt_input(), webhook=f"{receiver.url}/retried"
    )
    failed = await wait_for_status(user.client, job["id"], "failed")
    assert failed["error"]["code"] == "insufficient_tokens"
    [first] = await settled(user.client, job["id"], 1)
    assert first["event_type"] == "job.failed" and first["outcome"] == "gone"
    assert (await user.client.post(f"/v1/jobs/{job['id']}/retry")).status_code == 200
    await wait_for_status(user.client, job["id"], "failed")
    items = await settled(user.client, job["id"], 2)
    assert [i["outcome"] for i in items] == ["gone", "skipped"]
    assert items[1]["status_code"] is None and "410" in items[1]["error"]
    await asyncio.sleep(1.0)
    assert len(receiver.at("/retried")) == 1


async def test_redirects_are_not_followed(make_user: MakeUser, receiver: Receiver) -> None:
    user = await make_user()
    receiver.script("/moved", 302, 410)
    receiver.redirects["/moved"] = f"{receiver.url}/target"
    job = await submit(
        user.client, "prompt.generate", prompt_input(), webhook=f"{receiver.url}/moved"
    )
    items = await settled(user.client, job["id"], 2)
    assert [i["status_code"] for i in items] == [302, 410]
    assert items[0]["outcome"] == "failed"
    assert "not followed" in items[0]["error"]
    assert receiver.at("/target") == []
    assert len(receiver.at("/moved")) == 2


async def test_rotated_secret_signs_later_webhooks(make_user: MakeUser, receiver: Receiver) -> None:
    user = await make_user()
    old = await secret_of(user)
    rotated = await user.client.post("/v1/me/webhook-secret/rotate")
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != old
    assert await secret_of(user) == new
    await submit(user.client, "prompt.generate", prompt_input(), webhook=f"{receiver.url}/rot")
    [request] = await receiver.wait_for("/rot", 1)
    assert verified(new, request)["type"] == "job.completed"
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(request.body.decode(), request.headers)


async def test_deliveries_are_owner_scoped(
    make_user: MakeUser, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    owner = await make_user()
    stranger = await make_user()
    job = await submit(
        owner.client, "prompt.generate", prompt_input(), webhook=f"{receiver.url}/own"
    )
    await settled(owner.client, job["id"], 1)
    hidden = await stranger.client.get(f"/v1/jobs/{job['id']}/deliveries")
    assert hidden.status_code == 404
    assert hidden.json()["error"]["code"] == "job_not_found"
    assert len(await deliveries(client, job["id"])) == 1
    plain = await submit(owner.client, "prompt.generate", prompt_input())
    assert await deliveries(owner.client, plain["id"]) == []
    assert (await owner.client.get("/v1/jobs/not-a-uuid/deliveries")).status_code == 422


async def test_reconciler_sends_a_delivery_redis_lost(
    make_user: MakeUser, receiver: Receiver, services: Services
) -> None:
    """A pending delivery whose task never reached Redis is found in PostgreSQL and sent."""
    user = await make_user()
    secret = await secret_of(user)
    job = await submit(user.client, "prompt.generate", prompt_input())
    final = await wait_for_status(user.client, job["id"], "completed")
    async with services.engine.begin() as conn:
        delivery_id, _ = await deliveries_db.insert_pending(
            conn,
            job_id=final["id"],
            webhook_id="msg_lost_in_redis_" + final["id"][:8],
            event_type="job.completed",
            url=f"{receiver.url}/lost",
            payload={"type": "job.completed", "timestamp": final["completed_at"], "data": final},
        )
    [request] = await receiver.wait_for("/lost", 1, timeout=30)
    assert verified(secret, request)["data"] == final
    assert request.headers["webhook-id"] == "msg_lost_in_redis_" + final["id"][:8]
    [item] = await settled(user.client, job["id"], 1)
    assert item["id"] == delivery_id and item["outcome"] == "delivered"
