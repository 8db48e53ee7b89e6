"""What every benchmark gets: the backends, the migrated template, the run's size, a log."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from bench.environment import Backends
from bench.stack import Template


@dataclass
class Context:
    backends: Backends
    template: Template
    quick: bool
    profile_dir: str | None = None
    started: float = field(default_factory=time.monotonic)

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def seconds(self, full: float, quick: float) -> float:
        return quick if self.quick else full

    def log(self, message: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[{elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)
