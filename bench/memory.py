"""Memory: resident set size (VmRSS) of the real API and worker processes, idle and after work.

The end-to-end benchmark takes the readings (an idle API and worker before its run, both again
after 2000 jobs); this module reads them and turns them into rows against the 150 MB target.
"""

from __future__ import annotations

from bench.environment import Proc, rss_mb
from bench.report import Row

TARGET_MB = 150.0


def rss(proc: Proc) -> float:
    return rss_mb(proc.pid)


def rows(readings: dict[str, float]) -> list[Row]:
    return [
        Row(
            "memory",
            f"{name} RSS",
            value,
            "MB",
            target=f"< {TARGET_MB:.0f} MB",
            met=value < TARGET_MB,
        )
        for name, value in readings.items()
    ]
