"""`GET /v1/kinds`: the kinds this service runs, with their input schemas."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from jobrelay.dependencies import CallerDep, ServicesDep
from jobrelay.http_errors import error_responses
from jobrelay.kinds.discovery import load_kinds
from jobrelay.route_table import api_router

router = api_router(prefix="/v1/kinds", tags=["jobs"])


class KindOut(BaseModel):
    name: str = Field(description="The `kind` of a submission.")
    queue: str = Field(description="The queue its jobs wait in (`jobrelay worker --queue`).")
    input_schema: dict[str, Any] = Field(description="JSON Schema of the job's `input`.")
    deadline_seconds: int = Field(description="Default time a started job may take.")
    delegated: bool = Field(description="Carried out by an external HTTP worker.")
    description: str


class KindList(BaseModel):
    items: list[KindOut]


@router.get("", response_model=KindList, summary="List job kinds", responses=error_responses(401))
async def list_kinds(services: ServicesDep, _: CallerDep) -> KindList:
    """Every kind a job may have here, built-in or added, sorted by name."""
    settings = services.settings
    return KindList(
        items=[
            KindOut(
                name=spec.name,
                queue=spec.queue,
                input_schema=spec.input_model.model_json_schema(),
                deadline_seconds=spec.deadline_seconds(settings),
                delegated=spec.delegation is not None,
                description=spec.description,
            )
            for spec in load_kinds().values()
        ]
    )
