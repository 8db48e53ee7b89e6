"""`@kind`: declare a job kind where its handler is written.

The decorator registers the kind and hands the function back unchanged, so it stays an
ordinary coroutine function a test can call. The registry stores a runner that adapts it to
the runtime: parse the stored input with the kind's model, call `handler(ctx, data)`, turn the
returned value into the job's result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from jobrelay.kinds.context import JobContext
from jobrelay.kinds.demo import Demo
from jobrelay.kinds.registry import DEFAULT_QUEUE, REGISTRY, Deadline, KindRegistry, KindSpec
from jobrelay.runtime.errors import JobFailed
from jobrelay.runtime.registry import Handler, KindRunner, Outcome

if TYPE_CHECKING:
    from jobrelay.runtime.context import RunContext

__all__ = ["KIND_ATTRIBUTE", "kind", "runner_of", "spec_of"]

InputT = TypeVar("InputT", bound=BaseModel)
KindHandler = Callable[[JobContext, InputT], Awaitable[Any]]
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

KIND_ATTRIBUTE = "__jobrelay_kind__"


def kind(
    name: str,
    *,
    input: type[BaseModel],
    queue: str = DEFAULT_QUEUE,
    deadline_seconds: Deadline = None,
    start_progress: int = 0,
    start_message: str = "Job started",
    done_message: str = "Job completed",
    schema_name: str | None = None,
    demo: Demo | None = None,
    registry: KindRegistry | None = None,
) -> Callable[[F], F]:
    """Register the decorated `async def handler(ctx: JobContext, data: Input)` as job kind
    `name`.

    - `input`: the pydantic model the API validates a submission's `input` with (422 with the
      field errors) and the handler receives, parsed.
    - `queue`: the queue its jobs wait in; `jobrelay worker --queue NAME` serves chosen queues.
    - `deadline_seconds`: how long a started job may run before it fails with `timeout`
      (default `JOBRELAY_JOB_DEADLINE_SECONDS`); a number, or a function of the settings.
    - `start_progress`, `start_message`: the job's values when a worker picks it up;
      `done_message`: its message once completed (`ctx.set_completion_message` overrides).
    - `schema_name`: the OpenAPI name of its submission body (default from the model's name:
      `CaptionInput` -> `CaptionJobCreate`).
    - `demo`: demo data for `jobrelay db seed` (see `jobrelay.kinds.demo`).

    The handler's return value is the job's result: any JSON-serialisable value (a pydantic
    model is dumped; a value that is not a JSON object is stored as `{"value": ...}`). Raising
    `JobFailed(code, message)` fails the job for good; any other exception is retried with
    backoff within the attempt budget.
    """

    def register(handler: F) -> F:
        spec = KindSpec(
            name=name,
            input_model=input,
            runner=KindRunner(
                handler=adapt(name, input, handler, done_message),
                start_progress=start_progress,
                start_message=start_message,
            ),
            origin=origin_of(handler),
            queue=queue,
            deadline=deadline_seconds,
            schema_name=schema_name or "",
            description=_summary(handler),
            demo=demo,
        )
        (registry if registry is not None else REGISTRY).register(spec)
        setattr(handler, KIND_ATTRIBUTE, spec)
        return handler

    return register


def adapt(
    name: str, model: type[BaseModel], handler: Callable[..., Awaitable[Any]], done_message: str
) -> Handler:
    """The runtime's shape of a `@kind` handler: RunContext in, Outcome out."""

    async def run(run_ctx: RunContext) -> Outcome:
        try:
            data = model.model_validate(run_ctx.input)
        except ValidationError as exc:
            raise JobFailed(
                "invalid_input",
                f"The stored input is not valid for {name} any more: "
                f"{exc.error_count()} error(s), first: {exc.errors()[0]['msg']}.",
            ) from exc
        ctx = JobContext(run_ctx, kind=name, done_message=done_message)
        value = await handler(ctx, data)
        return Outcome(
            result=result_document(name, value),
            message=ctx.completion_message,
            charge_tokens=ctx.tokens_charged,
        )

    run.__qualname__ = f"{origin_of(handler)} (adapted)"
    return run


def result_document(name: str, value: Any) -> dict[str, Any]:
    """A handler's return value as the job's JSON result."""
    if value is None:
        return {}
    try:
        if isinstance(value, BaseModel):
            document = value.model_dump(mode="json")
        else:
            document = to_jsonable_python(value)
    except PydanticSerializationError as exc:
        raise JobFailed(
            "invalid_result",
            f"The {name} handler returned a {type(value).__name__}, which is not JSON: {exc}",
        ) from exc
    if isinstance(document, dict):
        return document
    return {"value": document}


def origin_of(function: Callable[..., Any]) -> str:
    module = getattr(function, "__module__", "?")
    return f"{module}:{getattr(function, '__qualname__', repr(function))}"


def spec_of(handler: Callable[..., Any]) -> KindSpec:
    """The kind a function was declared as with `@kind`."""
    spec = getattr(handler, KIND_ATTRIBUTE, None)
    if not isinstance(spec, KindSpec):
        raise LookupError(f"{origin_of(handler)} is not declared with @kind")
    return spec


def runner_of(handler: Callable[..., Any]) -> KindRunner:
    """How the runtime runs the kind a function was declared as."""
    return spec_of(handler).runner


def _summary(handler: Callable[..., Any]) -> str:
    doc = (handler.__doc__ or "").strip()
    return doc.split("\n\n", 1)[0].replace("\n", " ") if doc else ""
