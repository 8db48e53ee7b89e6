"""Job kinds: the public API to declare one (`@kind`, `JobContext`, `JobFailed`), the registry
everything else reads, and discovery of the modules that declare them.

```python
from pydantic import BaseModel
from jobrelay import JobContext, JobFailed, kind

class CaptionInput(BaseModel):
    url: str

@kind("video.caption", input=CaptionInput, queue="default", deadline_seconds=600)
async def caption(ctx: JobContext, data: CaptionInput) -> dict:
    await ctx.progress(20, "Downloading")
    if not data.url.startswith("https://"):
        raise JobFailed("bad_url", "Only https URLs are supported.")
    return {"caption": "..."}
```

A kind carried out by an external HTTP worker is declared with `delegated(...)` instead
(see `jobrelay.kinds.delegated`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from jobrelay.kinds.context import JobContext, ProgressWrite
from jobrelay.kinds.decorator import kind, runner_of, spec_of
from jobrelay.kinds.discovery import KindLoadError, load_kinds
from jobrelay.kinds.registry import (
    DEFAULT_QUEUE,
    REGISTRY,
    DuplicateKind,
    InvalidKind,
    KindRegistry,
    KindSpec,
)
from jobrelay.runtime.errors import JobFailed

__all__ = [
    "DEFAULT_QUEUE",
    "KINDS",
    "REGISTRY",
    "DuplicateKind",
    "InvalidKind",
    "JobContext",
    "JobFailed",
    "KindLoadError",
    "KindRegistry",
    "KindSpec",
    "ProgressWrite",
    "kind",
    "load_kinds",
    "runner_of",
    "spec_of",
]


class _LoadedKinds(Mapping[str, KindSpec]):
    """The process's kinds, discovered on first use."""

    def _kinds(self) -> KindRegistry:
        return load_kinds()

    def __getitem__(self, name: str) -> KindSpec:
        return self._kinds()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds())

    def __len__(self) -> int:
        return len(self._kinds())


KINDS: Mapping[str, KindSpec] = _LoadedKinds()
"""Every kind this process knows, loaded (built-ins, JOBRELAY_KINDS, entry points) on first use."""
