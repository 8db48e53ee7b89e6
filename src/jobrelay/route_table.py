"""The app's routes as one flat table.

FastAPI 0.16x keeps each included router as one node that it walks route by route, twice per
request (once to match, once to handle), with scope bookkeeping for every candidate: with ten
routers that was about a third of what `GET /healthz` costs in process. Routers made with
`api_router` and laid out by `flat_routes` are matched once, route by route, as `app.get` ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute


def operation_id(route: APIRoute) -> str:
    """`<tag>-<function name>`, e.g. `jobs-get-job`: stable names for generated clients."""
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}".replace("_", "-")


def api_router(**options: Any) -> APIRouter:
    """An APIRouter whose routes carry the app's operation ids, since they are not included
    (where FastAPI would apply the app's `generate_unique_id_function`) but laid out flat."""
    return APIRouter(generate_unique_id_function=operation_id, **options)


def flat_routes(routers: Sequence[APIRouter]) -> list[BaseRoute]:
    """Every router's routes, in order: what `FastAPI(routes=...)` serves."""
    return [route for router in routers for route in router.routes]
