"""The status poll answered ahead of FastAPI's routing (`jobs.poll`): the route's very bytes
for a success, and every other request handed to the route untouched."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from jobrelay.jobs import poll
from jobrelay.jobs.poll import PollMiddleware
from jobrelay.services import Services
from jobrelay.users import service as users_service
from jobrelay.users.schemas import UserCreate
from tests.conftest import MakeUser
from tests.support.jobs import prompt_input, store_queued_job, submit, wait_for_status


class Route:
    """Stands for the FastAPI app behind the middleware: records what reaches it."""

    def __init__(self) -> None:
        self.reached: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.reached.append(scope)
        await send({"type": "http.response.start", "status": 599, "headers": []})
        await send({"type": "http.response.body", "body": b"route"})


async def _poll(
    services: Services,
    path: str,
    *,
    key: str | None,
    method: str = "GET",
    query: bytes = b"",
    middleware: PollMiddleware | None = None,
) -> tuple[int, dict[bytes, bytes], bytes, Route]:
    route = Route()
    if middleware is None:
        middleware = PollMiddleware(route)
    else:
        middleware.app = route
    headers = [] if key is None else [(b"authorization", f"Bearer {key}".encode())]
    scope: dict[str, Any] = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": headers,
        "app": SimpleNamespace(state=SimpleNamespace(services=services)),
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await middleware(scope, receive, send)
    start, body = sent
    return start["status"], dict(start["headers"]), body["body"], route


async def _user(services: Services, name: str) -> tuple[int, str]:
    user, key = await users_service.create_user(
        services, UserCreate(name=name, role="user", tokens=0)
    )
    return user.id, key


async def test_a_poll_of_ones_own_job_is_answered_without_the_route(services: Services) -> None:
    owner, key = await _user(services, "poller")
    job_id = await store_queued_job(services, owner)
    status, headers, body, route = await _poll(services, f"/v1/jobs/{job_id}", key=key)
    assert (status, route.reached) == (200, [])
    assert headers == {
        b"content-length": str(len(body)).encode(),
        b"content-type": b"application/json",
    }
    assert httpx.Response(200, content=body).json()["id"] == str(job_id)
    upper = await _poll(services, f"/v1/jobs/{str(job_id).upper()}", key=key)
    assert upper[0] == 200 and upper[2] == body and upper[3].reached == []


async def test_a_kept_answer_is_used_only_while_the_row_is_unchanged(services: Services) -> None:
    owner, key = await _user(services, "repoller")
    job_id = await store_queued_job(services, owner)
    middleware = PollMiddleware(Route())
    path = f"/v1/jobs/{job_id}"
    first = (await _poll(services, path, key=key, middleware=middleware))[2]
    again = (await _poll(services, path, key=key, middleware=middleware))[2]
    assert again is first  # the row was the same: the kept bytes
    async with services.engine.begin() as conn:
        await conn.exec_driver_sql(
            "UPDATE jobs SET progress = 40, message = 'Halfway' WHERE id = $1", (job_id,)
        )
    changed = (await _poll(services, path, key=key, middleware=middleware))[2]
    document = httpx.Response(200, content=changed).json()
    assert (document["progress"], document["message"]) == (40, "Halfway")
    async with services.engine.begin() as conn:
        # A column the document does not show changes too: the row differs, so it is made anew.
        await conn.exec_driver_sql(
            "UPDATE jobs SET deadline_seconds = 901 WHERE id = $1", (job_id,)
        )
    remade = (await _poll(services, path, key=key, middleware=middleware))[2]
    assert remade == changed and remade is not changed


async def test_kept_answers_stay_within_their_budget(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, key = await _user(services, "many polls")
    jobs = [await store_queued_job(services, owner) for _ in range(6)]
    middleware = PollMiddleware(Route())
    bodies = [
        (await _poll(services, f"/v1/jobs/{job_id}", key=key, middleware=middleware))[2]
        for job_id in jobs[:1]
    ]
    monkeypatch.setattr(poll, "KEPT_BYTES", 3 * len(bodies[0]) + 10)
    for job_id in jobs[1:]:
        await _poll(services, f"/v1/jobs/{job_id}", key=key, middleware=middleware)
    kept = middleware.answers._kept
    assert list(kept) == jobs[-3:]  # the oldest dropped first
    assert middleware.answers._bytes == sum(len(body) for _, body in kept.values())
    monkeypatch.setattr(poll, "KEPT_BODY_MAX", 10)
    await _poll(services, f"/v1/jobs/{jobs[0]}", key=key, middleware=middleware)
    assert jobs[0] not in kept  # too large to keep


@pytest.mark.parametrize(
    "case",
    ["no key", "bad key", "someone else's job", "no such job", "hex id", "query", "POST", "slash"],
)
async def test_anything_else_goes_to_the_route_untouched(services: Services, case: str) -> None:
    owner, key = await _user(services, f"owner {case}")
    _, other_key = await _user(services, f"other {case}")
    job_id = await store_queued_job(services, owner)
    path, options = f"/v1/jobs/{job_id}", {"key": key}
    if case == "no key":
        options["key"] = None
    elif case == "bad key":
        options["key"] = "jr_not_a_key"
    elif case == "someone else's job":
        options["key"] = other_key
    elif case == "no such job":
        path = f"/v1/jobs/{uuid.uuid4()}"
    elif case == "hex id":
        path = f"/v1/jobs/{job_id.hex}"
    elif case == "query":
        options["query"] = b"fields=id"
    elif case == "POST":
        options["method"] = "POST"
    elif case == "slash":
        path += "/"
    status, _, body, route = await _poll(services, path, **options)  # type: ignore[arg-type]
    assert (status, body) == (599, b"route")
    assert len(route.reached) == 1 and route.reached[0]["path"] == path


async def test_postgresql_unreachable_goes_to_the_route(services: Services, settings: Any) -> None:
    owner, key = await _user(services, "outage")
    job_id = await store_queued_job(services, owner)
    unreachable = await Services.open(
        settings.model_copy(update={"database_url": "postgresql://postgres@127.0.0.1:1/none"}),
        pool_size=1,
    )
    try:
        status, _, body, route = await _poll(unreachable, f"/v1/jobs/{job_id}", key=key)
    finally:
        await unreachable.close()
    assert (status, body, len(route.reached)) == (599, b"route", 1)


async def test_over_http_the_poll_and_the_route_answer_the_same(
    make_user: MakeUser, client: httpx.AsyncClient
) -> None:
    user = await make_user()
    job = await submit(user.client, "prompt.generate", prompt_input())
    await wait_for_status(user.client, job["id"], "completed")
    for http in (user.client, client):  # the owner, an admin
        polled = await http.get(f"/v1/jobs/{job['id']}")
        # A query string (ignored by the route) sends the same read through FastAPI.
        routed = await http.get(f"/v1/jobs/{job['id']}", params={"via": "route"})
        assert polled.status_code == routed.status_code == 200
        assert polled.content == routed.content
        assert _headers(polled) == _headers(routed)
    metrics = (await client.get("/metrics")).text
    assert 'jobrelay_http_requests_total{method="GET",route="/v1/jobs/{job_id}",status="200"}' in (
        metrics
    )


def _headers(response: httpx.Response) -> list[tuple[str, str]]:
    return [(k, v) for k, v in response.headers.multi_items() if k != "date"]
