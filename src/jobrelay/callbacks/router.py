"""HTTP routes for the generator's callbacks and for reading a job's callback audit trail."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from jobrelay.callbacks import service
from jobrelay.callbacks.schemas import CallbackList, CallbackOut, CallbackReply
from jobrelay.dependencies import CallerDep, ServicesDep
from jobrelay.http_errors import error_responses
from jobrelay.jobs import service as jobs_service
from jobrelay.route_table import api_router

router = api_router(tags=["callbacks"])

_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object"},
                "examples": {
                    "progress": {
                        "value": {"status": "processing", "progress": 40, "message": "Generating"}
                    },
                    "result": {
                        "value": {
                            "worker_task_id": "gen-1b2c",
                            "user_id": 1,
                            "questions": [
                                {
                                    "sentence": "Which statement is MOST appropriate?",
                                    "options": {"A": "...", "B": "...", "C": "...", "D": "..."},
                                    "correct_answer": "B",
                                    "explanation": "...",
                                    "type": "sentence_completion",
                                    "difficulty": "advanced",
                                    "score": 1,
                                    "context": "code review",
                                }
                            ],
                            "meta": {"processing_time_sec": 315, "total_processed": 1},
                        }
                    },
                    "failure": {"value": {"status": "failed", "error": "GPU out of memory"}},
                },
            }
        },
    }
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": CallbackReply, "description": "Progress or failure applied (or resent)"},
    201: {"model": CallbackReply, "description": "Questions saved, job completed"},
    **error_responses(401, 404, 409, 413, 422, 503),
}


async def _receive(request: Request, services: Any, job_ref: str | None) -> JSONResponse:
    incoming = service.Incoming(
        route=request.url.path,
        headers=request.headers,
        body=await request.body(),
        job_ref=job_ref,
    )
    reply = await service.receive(services, incoming)
    return JSONResponse(reply.body, status_code=reply.status_code)


@router.post(
    "/v1/callbacks/{job_id}",
    summary="Generator callback",
    response_model=None,
    responses=_RESPONSES,
    openapi_extra=_BODY_DOC,
)
async def receive_callback(job_id: str, request: Request, services: ServicesDep) -> JSONResponse:
    """Progress, result or failure for one job, signed with Standard Webhooks (or, for older
    generators, `X-AI-Worker-Token`). A resent message has no second effect."""
    return await _receive(request, services, job_id)


@router.post(
    "/api/ai/receive/",
    summary="Generator callback (original AI worker route)",
    response_model=None,
    responses=_RESPONSES,
    openapi_extra=_BODY_DOC,
)
async def receive_original(request: Request, services: ServicesDep) -> JSONResponse:
    """The same callback as the original AI worker sends it; the job is found by
    `worker_task_id` (the task id the generator returned, or the job id)."""
    return await _receive(request, services, None)


@router.post("/api/ai/receive", include_in_schema=False, response_model=None)
async def receive_original_no_slash(request: Request, services: ServicesDep) -> JSONResponse:
    return await _receive(request, services, None)


@router.get(
    "/v1/jobs/{job_id}/callbacks",
    response_model=CallbackList,
    summary="A job's received callbacks",
    responses=error_responses(401, 404, 422),
)
async def list_job_callbacks(
    job_id: uuid.UUID, services: ServicesDep, caller: CallerDep
) -> CallbackList:
    """Every callback received for the job, accepted or refused, oldest first."""
    await jobs_service.ensure_visible(services, caller, job_id)
    items = await service.list_for_job(services, job_id)
    return CallbackList(items=[CallbackOut.model_validate(item) for item in items])
