"""HTTP routes of jobs; thin: parse, call the service, shape the response."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from fastapi import Header, Query, Request, Response

from jobrelay.dependencies import CallerDep, ServicesDep
from jobrelay.errors import Unprocessable
from jobrelay.http_errors import error_responses
from jobrelay.jobs import service
from jobrelay.jobs.schemas import EventList, JobCreate, JobKind, JobOut, JobPage, JobStatusName
from jobrelay.route_table import api_router
from jobrelay.streaming import event_stream_response

router = api_router(prefix="/v1/jobs", tags=["jobs"])
JobId = Annotated[uuid.UUID, "job id"]
_OUTPUT_EVENT_SCHEMA = {
    "type": "object",
    "description": "Live output: `text` appended at `offset` (0 starts the text over).",
    "properties": {
        "type": {"const": "output"},
        "data": {
            "type": "object",
            "properties": {"text": {"type": "string"}, "offset": {"type": "integer", "minimum": 0}},
            "required": ["text", "offset"],
        },
    },
    "required": ["type", "data"],
}
SSE_EVENT_SCHEMA = {
    "type": "object",
    "description": (
        "One event of the stream, sent as `id: <event id>` and `data: <event JSON>`; live "
        "output is sent as `data:` only (it is not stored, so it has no id)."
    ),
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {
                "oneOf": [{"$ref": "#/components/schemas/EventOut"}, _OUTPUT_EVENT_SCHEMA]
            },
        },
    },
    "required": ["data"],
}
_EVENT_ID = re.compile(r"^[0-9]*$")
_MAX_EVENT_ID = 2**63 - 1
_PREFER_WAIT = re.compile(r"(?:^|[;,\s])wait\s*=\s*(\d+)", re.IGNORECASE)


def _prefer_wait(prefer: str | None, limit: int) -> int:
    if not prefer:
        return 0
    match = _PREFER_WAIT.search(prefer)
    return min(int(match.group(1)), limit) if match else 0


@router.post(
    "",
    status_code=202,
    response_model=JobOut,
    summary="Submit a job",
    responses={
        200: {"model": JobOut, "description": "Finished within `Prefer: wait=N`"},
        **error_responses(401, 403, 409, 413, 422, 429, 503),
    },
)
async def submit_job(
    body: JobCreate,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=255, pattern=r"\S")] = None,
    prefer: Annotated[str | None, Header(max_length=200)] = None,
) -> Any:
    """Accept a job and answer `202` at once. `Prefer: wait=N` holds up to N seconds (≤ 60)."""
    if idempotency_key is not None and not idempotency_key.strip():
        raise Unprocessable("Idempotency-Key must not be empty.", code="invalid_idempotency_key")
    submitted = await service.submit(services, caller, body, idempotency_key=idempotency_key)
    job = submitted.job
    headers = {"Location": job.urls.self}
    if submitted.replayed:
        headers["Idempotent-Replayed"] = "true"
    wait = _prefer_wait(prefer, services.settings.max_wait_seconds)
    status_code = 202
    if job.status in ("completed", "failed", "canceled"):
        status_code = 200 if wait else 202
    elif wait:
        final = await service.wait_for_end(services, job.id, seconds=wait)
        if final is not None:
            job = JobOut.from_row(final)
            status_code = 200
    if wait:
        headers["Preference-Applied"] = f"wait={wait}"
    return job_response(job, status_code=status_code, headers=headers)


@router.get("", response_model=JobPage, summary="List jobs", responses=error_responses(401, 422))
async def list_jobs(
    services: ServicesDep,
    caller: CallerDep,
    kind: JobKind | None = None,
    status: JobStatusName | None = None,
    user_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JobPage:
    """Newest first; pass `next_cursor` back as `cursor` for the next page."""
    return await service.list_jobs(
        services, caller, kind=kind, status=status, user_id=user_id, limit=limit, cursor=cursor
    )


@router.get(
    "/{job_id}",
    response_model=JobOut,
    summary="Get a job",
    responses=error_responses(401, 404, 422),
)
async def get_job(job_id: uuid.UUID, services: ServicesDep, caller: CallerDep) -> Response:
    return job_response(await service.get_job(services, caller, job_id))


def job_response(
    job: JobOut, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """The job serialized once, by pydantic's core. Returned as a model, FastAPI would validate
    it against `response_model` again and serialize it through its own response path; built
    as a dict for `JSONResponse`, it went through `json.dumps` in Python."""
    return Response(
        job.model_dump_json(),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


@router.post(
    "/{job_id}/cancel",
    response_model=JobOut,
    summary="Cancel a job",
    responses=error_responses(401, 404, 409, 422),
)
async def cancel_job(job_id: uuid.UUID, services: ServicesDep, caller: CallerDep) -> JobOut:
    """Queued or processing → canceled; running work is aborted. Terminal jobs answer 409."""
    return await service.cancel(services, caller, job_id)


@router.post(
    "/{job_id}/retry",
    response_model=JobOut,
    summary="Retry a job",
    responses=error_responses(401, 404, 409, 422),
)
async def retry_job(job_id: uuid.UUID, services: ServicesDep, caller: CallerDep) -> JobOut:
    """Failed or canceled → queued again; `attempts` keeps counting."""
    return await service.retry(services, caller, job_id)


@router.get(
    "/{job_id}/result",
    summary="Get a job's result",
    responses={
        200: {"content": {"application/json": {"schema": {"type": "object"}}}},
        **error_responses(401, 404, 409, 422),
    },
)
async def get_result(job_id: uuid.UUID, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    """The kind-specific result; `409` until the job is completed."""
    return await service.get_result(services, caller, job_id)


def wants_event_stream(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/event-stream" in accept or "application/json" not in accept


@router.get(
    "/{job_id}/events",
    summary="Job events (SSE stream, or JSON list with Accept: application/json)",
    response_model=EventList,
    responses={
        200: {
            "content": {
                "text/event-stream": {"schema": SSE_EVENT_SCHEMA},
                "application/json": {"schema": {"$ref": "#/components/schemas/EventList"}},
            }
        },
        **error_responses(401, 404, 422),
    },
)
async def job_events(
    job_id: uuid.UUID,
    request: Request,
    services: ServicesDep,
    caller: CallerDep,
    last_event_id: Annotated[
        str, Header(max_length=40, json_schema_extra={"pattern": _EVENT_ID.pattern})
    ] = "",
) -> Any:
    after = _event_id(last_event_id)
    if wants_event_stream(request):
        await service.ensure_visible(services, caller, job_id)
        return event_stream_response(services, job_id, after_id=after, request=request)
    return await service.list_events(services, caller, job_id, after_id=after)


def _event_id(value: str) -> int:
    value = value.strip()
    if not value:
        return 0
    # Event ids are bigints: a larger number is no event's id (and PostgreSQL would refuse it
    # mid-stream, after the 200 has been sent).
    if not _EVENT_ID.fullmatch(value) or int(value) > _MAX_EVENT_ID:
        raise Unprocessable(
            "Last-Event-ID must be the id of an event.", code="invalid_last_event_id"
        )
    return int(value)
