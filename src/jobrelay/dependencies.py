"""FastAPI dependencies: the process's services and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase

from jobrelay.services import Services
from jobrelay.users import service as users_service
from jobrelay.users.service import Caller


async def get_services(request: Request) -> Services:
    """Async on purpose: FastAPI runs a plain `def` dependency in a thread, a hop per request."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


class ApiKeyAuth(SecurityBase):
    """The caller named by `Authorization: Bearer <api key>`, in one dependency.

    FastAPI documents it as the security scheme `HTTPBearer` (what `fastapi.security.HTTPBearer`
    would add), but it also looks the key up: FastAPI solves every dependency with a full pass
    over the request's parameters, and the scheme, the caller and the services beneath it were
    three passes on every request."""

    def __init__(self, description: str) -> None:
        self.model = HTTPBearerModel(description=description)
        self.scheme_name = "HTTPBearer"

    async def __call__(self, request: Request) -> Caller:
        services: Services = request.app.state.services
        return await users_service.authenticate(
            services, bearer_token(request.headers.get("authorization", ""))
        )


def bearer_token(authorization: str) -> str | None:
    """The credentials of a `Bearer` authorization header, as `HTTPBearer` reads them."""
    scheme, _, credentials = authorization.partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        return None
    return credentials


api_key_auth = ApiKeyAuth(description="An API key: `Authorization: Bearer <key>`.")
CallerDep = Annotated[Caller, Depends(api_key_auth)]


async def get_admin(caller: CallerDep) -> Caller:
    users_service.require_admin(caller)
    return caller


AdminDep = Annotated[Caller, Depends(get_admin)]
