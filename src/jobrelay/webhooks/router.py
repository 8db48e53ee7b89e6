"""`GET /v1/jobs/{id}/deliveries`: the outgoing webhook attempts of one job."""

from __future__ import annotations

import uuid

from jobrelay.dependencies import CallerDep, ServicesDep
from jobrelay.http_errors import error_responses
from jobrelay.route_table import api_router
from jobrelay.webhooks import service
from jobrelay.webhooks.schemas import DeliveryList

router = api_router(prefix="/v1/jobs", tags=["jobs"])


@router.get(
    "/{job_id}/deliveries",
    response_model=DeliveryList,
    summary="Webhook deliveries of a job",
    responses=error_responses(401, 404, 422),
)
async def list_deliveries(
    job_id: uuid.UUID, services: ServicesDep, caller: CallerDep
) -> DeliveryList:
    """Every attempt, oldest first: outcome, HTTP status, duration and error of each."""
    return await service.list_deliveries(services, caller, job_id)
