"""Routes for the caller (`/v1/me`) and for admins managing users (`/v1/users`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from jobrelay.dependencies import AdminDep, CallerDep, ServicesDep
from jobrelay.http_errors import error_responses
from jobrelay.route_table import api_router
from jobrelay.users import service
from jobrelay.users.schemas import MeOut, UserCreate, UserCreated, UserPage, WebhookSecretOut

me_router = api_router(prefix="/v1/me", tags=["me"])
users_router = api_router(prefix="/v1/users", tags=["users"])


@me_router.get("", response_model=MeOut, summary="Who am I", responses=error_responses(401))
async def get_me(services: ServicesDep, caller: CallerDep) -> MeOut:
    return await service.get_me(services, caller)


@me_router.get(
    "/webhook-secret",
    response_model=WebhookSecretOut,
    summary="My webhook signing secret",
    responses=error_responses(401),
)
async def get_webhook_secret(services: ServicesDep, caller: CallerDep) -> WebhookSecretOut:
    return WebhookSecretOut(secret=await service.get_webhook_secret(services, caller))


@me_router.post(
    "/webhook-secret/rotate",
    response_model=WebhookSecretOut,
    summary="Rotate my webhook signing secret",
    responses=error_responses(401),
)
async def rotate_webhook_secret(services: ServicesDep, caller: CallerDep) -> WebhookSecretOut:
    return WebhookSecretOut(secret=await service.rotate_webhook_secret(services, caller))


@users_router.post(
    "",
    status_code=201,
    response_model=UserCreated,
    summary="Create a user (admin)",
    responses=error_responses(401, 403, 422),
)
async def create_user(body: UserCreate, services: ServicesDep, _: AdminDep) -> UserCreated:
    """Create a user and its API key; the key is shown in this response only."""
    user, key = await service.create_user(services, body)
    return UserCreated(user=user, api_key=key)


@users_router.get(
    "",
    response_model=UserPage,
    summary="List users (admin)",
    responses=error_responses(401, 403, 422),
)
async def list_users(
    services: ServicesDep,
    _: AdminDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[int | None, Query(ge=0, le=2**62)] = None,
) -> UserPage:
    items, next_id = await service.list_users(services, limit=limit, after_id=cursor)
    return UserPage(items=items, next_cursor=str(next_id) if next_id is not None else None)
