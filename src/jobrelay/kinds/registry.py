"""The registry of job kinds: every kind, built-in or not, is one `KindSpec` in it.

Everything else reads the registry: the API validates input with a kind's model, the worker
looks up how to run a kind, queues, deadlines, OpenAPI and `GET /v1/kinds` come from it. A kind
is declared once, where it is written (`@kind`), and the registry is filled when its module is
imported (see `jobrelay.kinds.discovery`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel

from jobrelay.runtime.registry import KindRunner

if TYPE_CHECKING:
    from jobrelay.config import Settings
    from jobrelay.kinds.delegated import Delegation
    from jobrelay.kinds.demo import Demo

__all__ = [
    "DEFAULT_QUEUE",
    "REGISTRY",
    "DuplicateKind",
    "InvalidKind",
    "KindRegistry",
    "KindSpec",
]

DEFAULT_QUEUE = "default"
KIND_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# A kind's default deadline: a number of seconds, or one read from the settings.
Deadline = int | Callable[["Settings"], int] | None


class InvalidKind(ValueError):
    """A declaration that cannot be registered (bad name, bad queue, bad input model)."""


class DuplicateKind(InvalidKind):
    """Two declarations share one name; start-up stops and names both."""

    def __init__(self, name: str, first: str, second: str) -> None:
        super().__init__(
            f"two job kinds are named {name!r}: {first} and {second}. Rename one of them, or "
            "stop loading one of their modules (JOBRELAY_KINDS, or the package that declares "
            "it in the 'jobrelay.kinds' entry-point group)."
        )
        self.name = name
        self.first = first
        self.second = second


@dataclass(frozen=True)
class KindSpec:
    """One job kind: its name, its input model, how a worker runs it, where it queues.

    `origin` is `module:function` of the declaration, for error messages; `schema_name` is
    the OpenAPI name of the kind's submission body; `delegation` is set for kinds an
    external HTTP worker carries out; `demo` is the kind's demo data for `jobrelay db seed`.
    """

    name: str
    input_model: type[BaseModel]
    runner: KindRunner
    origin: str
    queue: str = DEFAULT_QUEUE
    deadline: Deadline = None
    schema_name: str = ""
    description: str = ""
    delegation: Delegation | None = field(default=None, repr=False)
    demo: Demo | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not KIND_NAME.match(self.name):
            raise InvalidKind(
                f"job kind name {self.name!r} ({self.origin}) must be 1-64 letters, digits and "
                "'._:-', starting with a letter or digit"
            )
        if not QUEUE_NAME.match(self.queue):
            raise InvalidKind(
                f"queue {self.queue!r} of job kind {self.name!r} ({self.origin}) must be 1-64 "
                "letters, digits and '._-'"
            )
        if not (isinstance(self.input_model, type) and issubclass(self.input_model, BaseModel)):
            raise InvalidKind(
                f"input of job kind {self.name!r} ({self.origin}) must be a pydantic model class"
            )
        if not self.schema_name:
            object.__setattr__(self, "schema_name", default_schema_name(self))

    def deadline_seconds(self, settings: Settings) -> int:
        """Seconds a started job of this kind may run unless its submission sets its own."""
        if self.deadline is None:
            return settings.job_deadline_seconds
        if callable(self.deadline):
            return int(self.deadline(settings))
        return int(self.deadline)


def default_schema_name(spec: KindSpec) -> str:
    """`CaptionInput` -> `CaptionJobCreate`; a model not named `...Input` gets `...JobCreate`
    after its own name."""
    base = spec.input_model.__name__
    base = base.removesuffix("Input") or base
    return f"{base}JobCreate"


class KindRegistry(Mapping[str, KindSpec]):
    """Kinds by name. Registering a second kind under a taken name raises `DuplicateKind`
    (the same declaration registered again, as when its module is reloaded, replaces it)."""

    def __init__(self) -> None:
        self._kinds: dict[str, KindSpec] = {}

    def __getitem__(self, name: str) -> KindSpec:
        return self._kinds[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._kinds))

    def __len__(self) -> int:
        return len(self._kinds)

    def register(self, spec: KindSpec) -> KindSpec:
        existing = self._kinds.get(spec.name)
        if existing is not None and existing.origin != spec.origin:
            raise DuplicateKind(spec.name, existing.origin, spec.origin)
        self._kinds[spec.name] = spec
        return spec

    def unregister(self, name: str) -> None:
        self._kinds.pop(name, None)

    def runners(self) -> dict[str, KindRunner]:
        """What the worker dispatches on: kind name -> how to run it."""
        return {name: spec.runner for name, spec in self._kinds.items()}

    def queue_of(self, kind: str) -> str:
        """The queue a job of this kind goes to (the default one for a kind not loaded here)."""
        spec = self._kinds.get(kind)
        return spec.queue if spec is not None else DEFAULT_QUEUE

    def queues(self) -> list[str]:
        """Every queue some kind uses, the default one always among them."""
        return sorted({DEFAULT_QUEUE, *(spec.queue for spec in self._kinds.values())})

    def delegated(self) -> list[KindSpec]:
        return [spec for spec in self.values() if spec.delegation is not None]

    def longest_deadline(self, settings: Settings) -> int:
        return max(
            [settings.job_deadline_seconds, *(s.deadline_seconds(settings) for s in self.values())]
        )


REGISTRY = KindRegistry()
"""The process's kinds; `@kind` registers here."""
