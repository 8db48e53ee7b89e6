"""Exception handlers: every 4xx/5xx leaves in the contract's shape, never as a bare 500 for bad input.

Failures of PostgreSQL or Redis become 503 naming what is down, so clients retry instead of guessing.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from jobrelay.errors import AppError, error_body

logger = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "service_unavailable",
}


class ErrorBody(BaseModel):
    """What went wrong: a stable snake_case code, a sentence, and per-field details."""

    code: str
    message: str
    details: list[Any]


class ErrorResponse(BaseModel):
    """The one shape of every error response."""

    error: ErrorBody


_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the errors an operation can answer, all with `ErrorResponse`."""
    return {code: {"model": ErrorResponse, "description": "Error"} for code in codes}


def _one_error_schema(spec: dict[str, Any]) -> dict[str, Any]:
    """Point every 4xx/5xx response at the `ErrorResponse` component.

    FastAPI documents a 422 it adds itself as `HTTPValidationError`, which is not what the
    handlers send; replacing it (and any other error schema) by the shared component lets
    generated clients parse every error with one model instead of one per status.
    """
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error_schema.pop("$defs", {}))
    schemas["ErrorResponse"] = error_schema
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for status, response in operation.get("responses", {}).items():
                if str(status)[0] in "45":
                    response["content"] = {"application/json": {"schema": _ERROR_REF}}
    text = str(spec.get("paths", {}))
    for unused in ("HTTPValidationError", "ValidationError"):
        if f"/{unused}'" not in text:
            schemas.pop(unused, None)
    return spec


def install_openapi_errors(app: FastAPI) -> None:
    """Serve the OpenAPI document with every error response on `ErrorResponse`."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _one_error_schema(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=body, headers=headers)


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return _json(exc.status_code, exc.body(), exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = []
    for err in exc.errors():
        details.append(
            {"loc": list(err.get("loc", [])), "msg": str(err.get("msg")), "type": err.get("type")}
        )
    is_json_error = any(d["type"] == "json_invalid" for d in details)
    message = (
        "The request body is not valid JSON."
        if is_json_error
        else "The request is not valid: "
        + "; ".join(f"{'.'.join(str(p) for p in d['loc'])}: {d['msg']}" for d in details[:5])
    )
    code = "invalid_json" if is_json_error else "validation_error"
    return _json(422, error_body(code, message, details))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI's answer to a body that is not text; like any other broken JSON, a 422.
        return _json(422, error_body("invalid_json", "The request body is not valid JSON."))
    code = _STATUS_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    return _json(exc.status_code, error_body(code, message), headers)


_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def _allowed_methods(request: Request) -> str | None:
    """Every method the OpenAPI document gives this path: Starlette names only those of the
    first route that matched it, though another route may serve the same path."""
    paths: dict[str, Any] = request.app.openapi().get("paths", {})
    for template, operations in paths.items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            return ", ".join(sorted(m.upper() for m in operations if m in _HTTP_METHODS))
    return None


async def _database_down(_: Request, exc: Exception) -> JSONResponse:
    logger.warning("database unavailable: %s", exc)
    return _json(
        503,
        error_body("database_unavailable", "PostgreSQL is unavailable; retry shortly."),
        {"Retry-After": "5"},
    )


async def _redis_down(_: Request, exc: Exception) -> JSONResponse:
    logger.warning("redis unavailable: %s", exc)
    return _json(
        503,
        error_body("redis_unavailable", "Redis is unavailable; retry shortly."),
        {"Retry-After": "5"},
    )


# SQLSTATEs that mean "the server cannot serve us right now", not "this request is wrong":
# connection exceptions (08xxx), shutting down or starting up (57P01-57P03), a statement that
# ran past its timeout (57014), and the server out of connections (53300).
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "57014", "53300"})


def _server_unavailable(error: object) -> bool:
    state = str(getattr(error, "sqlstate", None) or "")
    return state.startswith("08") or state in _UNAVAILABLE_STATES


async def _dbapi_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if (
        exc.connection_invalidated
        or isinstance(exc, OperationalError | InterfaceError)
        or _server_unavailable(exc.orig)
    ):
        return await _database_down(request, exc)
    return await _unexpected(request, exc)


async def _driver_error(request: Request, exc: Exception) -> JSONResponse:
    """The same for the driver's own errors, raised by the read pool (jobrelay.db.reads)."""
    if isinstance(exc, asyncpg.InterfaceError) or _server_unavailable(exc):
        return await _database_down(request, exc)
    return await _unexpected(request, exc)


async def _os_error(request: Request, exc: Exception) -> JSONResponse:
    return await _database_down(request, exc)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected error", exc_info=exc)
    return _json(500, error_body("internal_error", "Something went wrong on our side."))


def install_error_handlers(app: FastAPI) -> None:
    install_openapi_errors(app)
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RedisConnectionError, _redis_down)
    app.add_exception_handler(RedisTimeoutError, _redis_down)
    app.add_exception_handler(PoolTimeoutError, _database_down)
    app.add_exception_handler(DBAPIError, _dbapi_error)
    app.add_exception_handler(asyncpg.PostgresError, _driver_error)
    app.add_exception_handler(asyncpg.InterfaceError, _driver_error)
    app.add_exception_handler(ConnectionError, _os_error)
    app.add_exception_handler(TimeoutError, _database_down)
    app.add_exception_handler(Exception, _unexpected)
