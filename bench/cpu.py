"""Where a benchmark's CPU goes: the processes under test, their PostgreSQL backends, Redis.

On two cores everything competes for the same CPU, so the cost of one request or one job is
best compared as CPU time per unit of work, process by process, for jobrelay and its baseline.
PostgreSQL backends are found by database name (`pg_stat_activity`), so other databases on the
same server are not counted; Redis is one server for everyone, so its figure includes whatever
else used it meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

import asyncpg

from bench.environment import pid_cpu, redis_server_pid


@dataclass
class CpuMeter:
    """CPU seconds per labelled group of processes between `start` and `stop`."""

    groups: dict[str, list[int]] = field(default_factory=dict)
    database: str | None = None
    admin_dsn: str | None = None
    before: dict[int, float] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)
    sessions_before: int = 0
    sessions: int = 0  # PostgreSQL connections opened between start and stop

    @classmethod
    def for_processes(
        cls,
        processes: dict[str, int],
        *,
        admin_dsn: str,
        database: str | None,
        redis_url: str,
    ) -> CpuMeter:
        meter = cls({name: [pid] for name, pid in processes.items()}, database, admin_dsn)
        redis_pid = redis_server_pid(urlsplit(redis_url).port or 6379)
        if redis_pid is not None:
            meter.groups["redis"] = [redis_pid]
        return meter

    async def _backends(self) -> list[int]:
        if self.database is None or self.admin_dsn is None:
            return []
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                self.database,
            )
        finally:
            await conn.close()
        return [int(r["pid"]) for r in rows]

    async def _sessions(self) -> int:
        """Connections PostgreSQL has accepted to the database so far."""
        if self.database is None or self.admin_dsn is None:
            return 0
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            count = await conn.fetchval(
                "SELECT sessions FROM pg_stat_database WHERE datname = $1", self.database
            )
        finally:
            await conn.close()
        return int(count or 0)

    async def start(self) -> None:
        self.sessions_before = await self._sessions()
        self.groups["postgres"] = await self._backends()
        self.before = pid_cpu([pid for pids in self.groups.values() for pid in pids])

    async def stop(self) -> dict[str, float]:
        backends = await self._backends()
        self.groups["postgres"] = sorted(set(self.groups["postgres"]) | set(backends))
        after = pid_cpu([pid for pids in self.groups.values() for pid in pids])
        # A process gone by now took its last CPU figure with it: it counts for nothing.
        self.used = {
            name: sum(after[pid] - self.before.get(pid, 0.0) for pid in pids if pid in after)
            for name, pids in self.groups.items()
        }
        self.sessions = await self._sessions() - self.sessions_before
        return self.used

    def per(self, units: int) -> dict[str, float]:
        """Milliseconds of CPU per unit of work, by group."""
        return (
            {name: seconds / units * 1000 for name, seconds in self.used.items()} if units else {}
        )


def describe(per_unit: dict[str, float]) -> str:
    return ", ".join(f"{name} {ms:.2f}" for name, ms in per_unit.items())
