"""Liveness and readiness. Readiness names what is down so an operator knows where to look."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy import text

from jobrelay.db import maintenance as maintenance_db
from jobrelay.dependencies import ServicesDep
from jobrelay.errors import error_body
from jobrelay.route_table import api_router
from jobrelay.services import Services

router = api_router(tags=["health"])


async def _check_postgres(services: Services) -> str | None:
    try:
        async with asyncio.timeout(3):
            async with services.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


async def _check_redis(services: Services) -> str | None:
    try:
        async with asyncio.timeout(3):
            await services.redis.ping()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


GENERATOR_CHECK_STALE_SECONDS = 300


async def _generator_status(services: Services) -> dict[str, Any] | None:
    """The last periodic check of the generator (a worker runs it): reported, never required,
    since only quizzes need the generator and a quiz waits for it rather than failing at once."""
    if not services.settings.generator_url:
        return None
    try:
        async with asyncio.timeout(3):
            async with services.engine.connect() as conn:
                row = await maintenance_db.get_check(conn, maintenance_db.GENERATOR_CHECK)
    except Exception as exc:
        return {"status": "unknown", "detail": f"{type(exc).__name__}: {exc}"[:300]}
    if row is None:
        return {"status": "unknown", "detail": "not checked yet"}
    status = "ok" if row.ok else "down"
    if float(row.age_seconds) > GENERATOR_CHECK_STALE_SECONDS:
        status = "stale"
    return {"status": status, "detail": row.detail, "checked_at": row.checked_at.isoformat()}


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: PostgreSQL and Redis (the generator's last check is reported, not required)",
    responses={503: {"description": "A dependency is down; `details` names it."}},
)
async def readyz(services: ServicesDep) -> Any:
    postgres, redis = await asyncio.gather(_check_postgres(services), _check_redis(services))
    checks = {
        "postgres": "ok" if postgres is None else "down",
        "redis": "ok" if redis is None else "down",
    }
    down = [
        {"component": name, "status": "down", "error": err}
        for name, err in (("postgres", postgres), ("redis", redis))
        if err is not None
    ]
    if down:
        names = " and ".join(d["component"] for d in down)
        body = error_body("not_ready", f"Not ready: {names} unavailable.", down)
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
    generator = await _generator_status(services)
    if generator is None:
        return {"status": "ready", "checks": checks}
    return {"status": "ready", "checks": checks, "details": {"generator": generator}}
