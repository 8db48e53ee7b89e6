"""The status poll, `GET /v1/jobs/{id}`, answered ahead of FastAPI's routing when it succeeds.

Clients poll a job far more often than they do anything else. Of the CPU a poll cost inside the
app, about two thirds went to FastAPI's machinery around the route (routing, solving the
route's dependencies, the exception and exit-stack layers, the response class), one third to
the work: the caller's lookup, the read and the JSON. This middleware does the work itself,
through the same services (`users.service.authenticate`, `jobs.service.get_job`) and with the
same bytes as the route (`jobs.router.job_response`). Anything but a success (no key or a bad
one, an id that is not a canonical UUID, a job that is not there or not the caller's, a query
string, PostgreSQL down) is passed on untouched to the FastAPI route, which answers it as it
always has; the route also stays what the OpenAPI document describes.
"""

from __future__ import annotations

import re
import uuid

from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from jobrelay.dependencies import bearer_token
from jobrelay.jobs import service
from jobrelay.jobs.router import get_job, router
from jobrelay.services import Services
from jobrelay.users import service as users_service

_POLL = re.compile(
    r"/v1/jobs/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
)
_HEADERS = b"content-type", b"application/json"


class PollMiddleware:
    """Answers a successful `GET /v1/jobs/{id}`; passes every other request on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
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
            job = await service.get_job(services, caller, uuid.UUID(match[1]))
        except Exception:
            await self.app(scope, receive, send)  # the route answers it, error and all
            return
        body = job.model_dump_json().encode()
        scope["route"] = self.route
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode()), _HEADERS],
            }
        )
        await send({"type": "http.response.body", "body": body})
