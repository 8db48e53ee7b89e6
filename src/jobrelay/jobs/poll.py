"""The status poll, `GET /v1/jobs/{id}`, answered ahead of FastAPI's routing when it succeeds.

Clients poll a job far more often than they do anything else. Of the CPU a poll cost inside the
app, about two thirds went to FastAPI's machinery around the route (routing, solving the
route's dependencies, the exception and exit-stack layers, the response class), one third to
the work: the caller's lookup, the read and the JSON. This middleware does the work itself,
through the same services (`users.service.authenticate`, `jobs.service.ensure_visible`) and
with the same bytes as the route (`JobOut`'s JSON, as `jobs.router.job_response` sends it).
Anything but a success (no key or a bad one, an id that is not a canonical UUID, a job that is
not there or not the caller's, a query string, PostgreSQL down) is passed on untouched to the
FastAPI route, which answers it as it always has; the route also stays what the OpenAPI
document describes.

A client polls the same job many times before it changes, so the document last answered for a
job is kept with the row it was made from (`Answers`): the row is read on every poll all the
same, and when it equals the kept one, column for column, the kept bytes are what it would
serialize to.
"""

from __future__ import annotations

import re
import uuid

from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from jobrelay.db.jobs import JobRow
from jobrelay.dependencies import bearer_token
from jobrelay.jobs import service
from jobrelay.jobs.router import get_job, router
from jobrelay.jobs.schemas import JobOut
from jobrelay.services import Services
from jobrelay.users import service as users_service

_POLL = re.compile(
    r"/v1/jobs/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
)
_HEADERS = b"content-type", b"application/json"
# What `Answers` keeps per process: bodies (and the rows they were made from, about as large)
# up to this many bytes; a larger document is made afresh on each poll.
KEPT_BYTES = 4 * 1024 * 1024
KEPT_BODY_MAX = 64 * 1024


class Answers:
    """The JSON last answered per job, with the row it was made from, oldest dropped first."""

    def __init__(self) -> None:
        self._kept: dict[uuid.UUID, tuple[JobRow, bytes]] = {}
        self._bytes = 0

    def body(self, row: JobRow) -> bytes:
        kept = self._kept.pop(row.id, None)
        if kept is not None and kept[0] == row:
            body = kept[1]
        else:
            body = JobOut.from_row(row).model_dump_json().encode()
        if kept is not None:
            self._bytes -= len(kept[1])
        if len(body) <= KEPT_BODY_MAX:
            self._kept[row.id] = (row, body)
            self._bytes += len(body)
            while self._bytes > KEPT_BYTES:
                _, oldest = self._kept.pop(next(iter(self._kept)))
                self._bytes -= len(oldest)
        return body


class PollMiddleware:
    """Answers a successful `GET /v1/jobs/{id}`; passes every other request on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answers = Answers()
        # The route's own object, so metrics and logs name the poll as they did.
        self.route = next(
            route
            for route in router.routes
            if isinstance(route, APIRoute) and route.endpoint is get_job
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope["query_string"]
            or (match := _POLL.fullmatch(scope["path"])) is None
        ):
            await self.app(scope, receive, send)
            return
        authorization = ""
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        try:
            services: Services = scope["app"].state.services
            caller = await users_service.authenticate(services, bearer_token(authorization))
            row = await service.ensure_visible(services, caller, uuid.UUID(match[1]))
        except Exception:
            await self.app(scope, receive, send)  # the route answers it, error and all
            return
        body = self.answers.body(row)
        scope["route"] = self.route
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode()), _HEADERS],
            }
        )
        await send({"type": "http.response.body", "body": body})
