"""`GET /v1/stats`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from jobrelay.dependencies import CallerDep, ServicesDep
from jobrelay.http_errors import error_responses
from jobrelay.route_table import api_router
from jobrelay.stats import service
from jobrelay.stats.schemas import StatsOut

router = api_router(tags=["health"])


@router.get(
    "/v1/stats",
    response_model=StatsOut,
    summary="Job statistics",
    responses=error_responses(401, 422),
)
async def get_stats(
    services: ServicesDep,
    caller: CallerDep,
    days: Annotated[int, Query(ge=0, le=366, description="Days of daily history (admins)")] = 0,
) -> StatsOut:
    """Counts per kind and status, p50/p95 durations and queue depth; admins see every job."""
    return await service.get_stats(services, caller, days=days)
