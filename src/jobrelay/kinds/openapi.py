"""The OpenAPI document reads the registry: one named submission schema per kind
(`PromptJobCreate`, `QuizJobCreate`, ..., discriminated by `kind`) with the kind's input model as
its `input`, and the kinds the `?kind=` filter accepts.

The request body itself is still parsed as one generic `JobCreate`, so that an unknown kind is
answered `422 unknown_kind` and a bad input `422 invalid_input` by the service, not a generic
validation error; only its documentation is per kind.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI
from pydantic.json_schema import models_json_schema

from jobrelay.kinds.registry import KindSpec

__all__ = ["install_kind_schemas", "kind_schemas"]

REF = "#/components/schemas/{model}"
SUBMIT_PATH = "/v1/jobs"


def install_kind_schemas(app: FastAPI, kinds: Mapping[str, KindSpec]) -> None:
    """Make `app.openapi()` describe each kind's submission (built once, on first request)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            kind_schemas(document, kinds)
            exact_integer_bounds(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def kind_schemas(document: dict[str, Any], kinds: Mapping[str, KindSpec]) -> None:
    """Rewrite `document` in place: per-kind submission schemas and the kind filter's values."""
    components: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    generic = components.get("JobCreate")
    specs = list(kinds.values())
    if generic is None or not specs:
        return
    _add_input_models(components, specs)
    mapping: dict[str, str] = {}
    for spec in specs:
        schema = copy.deepcopy(generic)
        schema["title"] = spec.schema_name
        schema["description"] = f"A `{spec.name}` job" + (
            f": {spec.description}" if spec.description else "."
        )
        schema["properties"]["kind"] = {"type": "string", "const": spec.name, "title": "Kind"}
        schema["properties"]["input"] = {"$ref": REF.format(model=spec.input_model.__name__)}
        schema.pop("examples", None)
        components[spec.schema_name] = schema
        mapping[spec.name] = REF.format(model=spec.schema_name)
    submit = document["paths"][SUBMIT_PATH]["post"]
    media = submit["requestBody"]["content"]["application/json"]
    media["schema"] = {
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "kind", "mapping": mapping},
    }
    del components["JobCreate"]
    for parameter in document["paths"][SUBMIT_PATH]["get"].get("parameters", []):
        if parameter.get("name") == "kind" and parameter.get("in") == "query":
            parameter["schema"] = {"type": "string", "enum": sorted(mapping), "title": "Kind"}


def exact_integer_bounds(node: Any) -> None:
    """FastAPI's OpenAPI model stores `minimum`/`maximum` as floats, so an integer field bounded
    by 2**62 documents 4.611686018427388e+18, which admits integers a little above the bound;
    integer fields get their bounds back as integers."""
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                value = node.get(key)
                if isinstance(value, float) and value.is_integer():
                    node[key] = int(value)
        for child in node.values():
            exact_integer_bounds(child)
    elif isinstance(node, list):
        for child in node:
            exact_integer_bounds(child)


def _add_input_models(components: dict[str, Any], specs: list[KindSpec]) -> None:
    """Each input model (and the models it uses) as a component, by its class name."""
    _, definitions = models_json_schema(
        [(spec.input_model, "validation") for spec in specs], ref_template=REF
    )
    for name, schema in definitions.get("$defs", {}).items():
        components.setdefault(name, schema)
