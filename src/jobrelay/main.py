"""The FastAPI application: `create_app()` wires routers, errors and the process's services."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from jobrelay import __version__
from jobrelay.callbacks.router import router as callbacks_router
from jobrelay.config import Settings, get_settings
from jobrelay.dashboard.router import router as dashboard_router
from jobrelay.health import router as health_router
from jobrelay.http_errors import install_error_handlers
from jobrelay.jobs.poll import PollMiddleware
from jobrelay.jobs.router import router as jobs_router
from jobrelay.kinds import load_kinds
from jobrelay.kinds.openapi import install_kind_schemas
from jobrelay.kinds.router import router as kinds_router
from jobrelay.metrics import MetricsMiddleware
from jobrelay.metrics import router as metrics_router
from jobrelay.middleware import BodyLimitMiddleware
from jobrelay.route_table import flat_routes, operation_id
from jobrelay.services import Services, freeze_startup_heap
from jobrelay.stats.router import router as stats_router
from jobrelay.users.router import me_router, users_router
from jobrelay.webhooks.router import router as deliveries_router

DESCRIPTION = """
Submit slow work and get `202` with a job id in milliseconds; follow it by polling, a live event
stream, a signed webhook, the CLI or the dashboard.

Authenticate with `Authorization: Bearer <api key>`. Every error has the shape
`{"error": {"code", "message", "details"}}`.
"""

TAGS = [
    {"name": "jobs", "description": "Submit, follow, cancel and retry jobs."},
    {"name": "callbacks", "description": "Where an external AI generator reports back."},
    {"name": "me", "description": "The caller and its webhook secret."},
    {"name": "users", "description": "Users and API keys (admin)."},
    {"name": "health", "description": "Liveness, readiness, metrics and stats."},
]


# Matched in this order: the routes clients poll most come first.
ROUTERS = (
    jobs_router,
    kinds_router,
    deliveries_router,
    callbacks_router,
    me_router,
    users_router,
    health_router,
    stats_router,
    metrics_router,
    dashboard_router,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    load_kinds()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await Services.open(settings)
        app.state.services = services
        freeze_startup_heap()
        try:
            yield
        finally:
            await services.close()

    # Swagger UI from the assets fastapi-offline ships, so /docs works without internet. No
    # ReDoc: its bundled script still fetches its logo from a CDN.
    app = FastAPIOffline(
        redoc_url=None,
        swagger_ui_parameters={"validatorUrl": None},
        title="jobrelay",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        routes=flat_routes(ROUTERS),
    )
    app.add_middleware(PollMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware)
    install_error_handlers(app)
    install_kind_schemas(app, load_kinds())
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return app
