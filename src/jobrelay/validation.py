"""Checks shared by every request body."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Strict, ValidationError


def find_nul(value: Any, path: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    """Where a NUL character hides in a JSON value (PostgreSQL text and JSONB cannot hold one)."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in str(key):
                return (*path, str(key))
            found = find_nul(item, (*path, str(key)))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = find_nul(item, (*path, index))
            if found is not None:
                return found
    return None


def error_details(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[dict[str, Any]]:
    """Pydantic errors as the contract's `details`: where, what, which rule."""
    return [
        {"loc": [*prefix, *err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def integral(value: Any) -> Any:
    """JSON Schema's `integer` admits 3.0; a strict int would refuse it. Strings and booleans
    stay refused, as the schema has them."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JsonInt = Annotated[int, Strict(), BeforeValidator(integral)]
"""An integer as the OpenAPI document promises it: 3 or 3.0, never "3" or true. Constraints go
in `Field(...)` (or, inside an optional, before the `BeforeValidator`)."""
