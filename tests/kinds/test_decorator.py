"""`@kind` and the registry on their own: what a handler's return value becomes, and what a
registry refuses (each test uses a registry of its own)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from pydantic import BaseModel

from jobrelay.kinds import DuplicateKind, InvalidKind, JobContext, JobFailed, KindRegistry, kind
from jobrelay.kinds.decorator import result_document, spec_of


class Note(BaseModel):
    text: str
    at: dt.date


@dataclasses.dataclass
class Pair:
    left: int
    right: int


@pytest.mark.parametrize(
    ("value", "document"),
    [
        (Note(text="hi", at=dt.date(2026, 1, 2)), {"text": "hi", "at": "2026-01-02"}),
        ({"a": [1, 2]}, {"a": [1, 2]}),
        ([1, "two"], {"value": [1, "two"]}),
        ("text", {"value": "text"}),
        (0, {"value": 0}),
        (None, {}),
        (Pair(1, 2), {"left": 1, "right": 2}),
    ],
)
def test_a_return_value_becomes_a_json_result(value: object, document: dict[str, object]) -> None:
    assert result_document("k", value) == document


def test_a_value_that_is_not_json_fails_the_job() -> None:
    with pytest.raises(JobFailed) as raised:
        result_document("k", {"socket": object()})
    assert raised.value.code == "invalid_result"


class In(BaseModel):
    x: int


async def _handler(ctx: JobContext, data: In) -> None:
    return None


def test_a_second_kind_with_a_taken_name_names_both_declarations() -> None:
    registry = KindRegistry()

    @kind("x.one", input=In, registry=registry)
    async def first(ctx: JobContext, data: In) -> None:
        return None

    with pytest.raises(DuplicateKind) as raised:

        @kind("x.one", input=In, registry=registry)
        async def second(ctx: JobContext, data: In) -> None:
            return None

    message = str(raised.value)
    assert (
        f"{__name__}:test_a_second_kind_with_a_taken_name_names_both_declarations.<locals>.first"
        in message
    )
    assert ".<locals>.second" in message
    assert spec_of(first).name == "x.one"


def test_the_same_declaration_registered_again_replaces_itself() -> None:
    registry = KindRegistry()
    kind("x.same", input=In, registry=registry)(_handler)
    kind("x.same", input=In, registry=registry, queue="other")(_handler)
    assert registry["x.same"].queue == "other"


@pytest.mark.parametrize(
    "options",
    [{"name": "has space"}, {"name": ""}, {"name": "ok", "queue": "bad queue"}],
)
def test_bad_names_are_refused(options: dict[str, str]) -> None:
    with pytest.raises(InvalidKind):
        kind(
            options["name"],
            input=In,
            queue=options.get("queue", "default"),
            registry=KindRegistry(),
        )(_handler)


def test_schema_name_and_queues_come_from_the_declarations() -> None:
    registry = KindRegistry()
    kind("x.a", input=In, registry=registry, queue="gpu")(_handler)

    class CaptionInput(BaseModel):
        url: str

    kind("x.b", input=CaptionInput, registry=registry)(_handler)
    assert registry["x.a"].schema_name == "InJobCreate"
    assert registry["x.b"].schema_name == "CaptionJobCreate"
    assert registry.queues() == ["default", "gpu"]
    assert registry.queue_of("x.a") == "gpu" and registry.queue_of("unknown") == "default"
