"""Finding the kinds a process runs: the built-ins, the modules in `JOBRELAY_KINDS`, and the
`jobrelay.kinds` entry points of installed packages. The API and every worker call
`load_kinds()` at start, so they all know the same kinds.

Importing a module runs its `@kind` decorators, which register. An entry point may name a
module (`caption_kind`) or an object in one (`caption_kind.kind:caption`); either way its module
is imported. The built-ins are loaded the same way from a fixed module list rather than from
jobrelay's own entry points: they are then there in a source checkout or an install whose
package metadata is stale, and cannot be uninstalled by accident.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from jobrelay.kinds.registry import REGISTRY, InvalidKind, KindRegistry

__all__ = [
    "BUILTIN_MODULES",
    "ENTRY_POINT_GROUP",
    "ENV_VAR",
    "KindLoadError",
    "configured_modules",
    "load_kinds",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "jobrelay.kinds"
ENV_VAR = "JOBRELAY_KINDS"
BUILTIN_MODULES = (
    "jobrelay.prompts.tasks",
    "jobrelay.quizzes.tasks",
    "jobrelay.ingestion.tasks",
)


class KindLoadError(RuntimeError):
    """A kind module could not be imported, or its kinds could not be registered; start-up
    stops with this message."""


@dataclass(frozen=True)
class _Source:
    module: str
    via: str  # where the name came from, for messages


def configured_modules(value: str | None = None) -> list[str]:
    """Module names in `JOBRELAY_KINDS` (comma-separated; blanks ignored)."""
    raw = os.environ.get(ENV_VAR, "") if value is None else value
    return [part.strip() for part in raw.split(",") if part.strip()]


def _entry_point_sources() -> list[_Source]:
    found: list[EntryPoint] = sorted(
        entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: (ep.name, ep.value)
    )
    return [
        _Source(ep.module, f"entry point {ep.name!r} = {ep.value!r} of {_dist(ep)}") for ep in found
    ]


def _dist(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"package {dist.name}" if dist is not None else "an installed package"


def _sources() -> list[_Source]:
    sources = [_Source(name, "jobrelay's built-in kinds") for name in BUILTIN_MODULES]
    sources += [_Source(name, ENV_VAR) for name in configured_modules()]
    return sources + _entry_point_sources()


_discovered = False


def load_kinds(
    modules: Iterable[str] = (), *, registry: KindRegistry | None = None
) -> KindRegistry:
    """Import every kind module (built-ins, `JOBRELAY_KINDS` and entry points once per process,
    and `modules`); the registry they filled. Raises `KindLoadError` naming the module and
    why."""
    global _discovered
    sources = [] if _discovered else _sources()
    sources += [_Source(name, "the caller") for name in modules]
    for source in sources:
        try:
            importlib.import_module(source.module)
        except InvalidKind as exc:
            raise KindLoadError(f"job kinds: {exc}") from exc
        except Exception as exc:
            raise KindLoadError(
                f"job kinds: cannot import {source.module!r} (from {source.via}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    _discovered = True
    loaded = registry if registry is not None else REGISTRY
    logger.debug("job kinds: %s", ", ".join(loaded))
    return loaded
