"""Load: 50, 200 and 500 concurrent clients, each submitting a job and polling it until it ends,
again and again, for a fixed time per level.

What it reports per level: requests/s, p50/p95/p99 latency of submissions and of status polls,
every status code (5xx must be zero; 429s, which come with `Retry-After` and are honoured by the
clients, are counted apart), whether every accepted job completed (after a bounded drain), the
peak number of PostgreSQL connections (`pg_stat_activity`) and the peak memory (RSS) of the API
and worker processes. A 503 means the service shed load (a pool timed out): it counts as a 5xx.

Each client is one keep-alive connection with its own user (as separate customers would be), so
per-user limits apply as in production: `RATE_LIMIT_PER_MINUTE` answers 429 and
`MAX_RUNNING_PER_USER` keeps extra jobs queued. Jobs are `prompt.generate` on the built-in
offline model with no delays, so what is measured is the service, not the model.

Run:
    python -m bench.load                # starts its own stack (API + 2 workers) on the local or
                                        # embedded PostgreSQL and Redis, 20 s per level
    python -m bench.load --quick        # 2.5 s per level
    python -m bench.load --url http://host:8000 --key ADMIN_KEY [--dsn postgresql://...]
It also joins `python -m bench` (through `run(ctx)`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx

from bench.context import Context
from bench.environment import Backends, Proc, jobrelay_worker, rss_mb
from bench.report import Report, Row, render
from bench.stack import Template, stack

LEVELS = (50, 200, 500)
POLL_INTERVAL = 0.25
DRAIN_SECONDS = 120.0
TERMINAL = {"completed", "failed", "canceled"}


# --- one keep-alive HTTP/1.1 connection ------------------------------------------------------


class Connection:
    """A minimal keep-alive HTTP/1.1 client: a general-purpose one would cost as much CPU per
    request as the server it measures, on the same two cores."""

    def __init__(self, host: str, port: int, key: str) -> None:
        self.host, self.port = host, port
        self.auth = f"authorization: Bearer {key}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        payload = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n{self.auth}"
        if body is not None:
            head += f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + payload)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0][9:12])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        content = await self.reader.readexactly(length) if length else b""
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, content

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


# --- one level -------------------------------------------------------------------------------


@dataclass
class LevelResult:
    clients: int
    seconds: float = 0.0
    submit_ms: list[float] = field(default_factory=list)
    status_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    rate_limited_without_retry_after: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    accepted: list[str] = field(default_factory=list)
    ended: dict[str, str] = field(default_factory=dict)
    peak_pg_connections: int = 0
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    client_cpu_seconds: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.submit_ms) + len(self.status_ms)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def server_errors(self) -> int:
        return sum(n for code, n in self.statuses.items() if code >= 500)

    @property
    def completed(self) -> int:
        return sum(1 for status in self.ended.values() if status == "completed")

    @property
    def unfinished(self) -> int:
        return len(self.accepted) - len(self.ended)

    def summary(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "seconds": round(self.seconds, 1),
            "requests": self.requests,
            "requests_per_second": round(self.rate, 1),
            "submit_ms": _percentiles(self.submit_ms),
            "status_ms": _percentiles(self.status_ms),
            "statuses": dict(sorted(self.statuses.items())),
            "server_errors": self.server_errors,
            "rate_limited": self.statuses.get(429, 0),
            "rate_limited_without_retry_after": self.rate_limited_without_retry_after,
            "connection_errors": dict(self.errors),
            "jobs_accepted": len(self.accepted),
            "jobs_completed": self.completed,
            "jobs_ended_otherwise": len(self.ended) - self.completed,
            "jobs_unfinished": self.unfinished,
            "peak_pg_connections": self.peak_pg_connections,
            "peak_rss_mb": {k: round(v, 1) for k, v in self.peak_rss_mb.items()},
            "client_cpu_seconds": round(self.client_cpu_seconds, 1),
        }


def _percentiles(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    ordered = sorted(values)

    def at(fraction: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 1)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99)}


async def _client(
    result: LevelResult, host: str, port: int, key: str, stop_at: float, number: int
) -> None:
    """Submit, poll until the job ends, repeat; honour `Retry-After` on 429."""
    loop = asyncio.get_running_loop()
    connection = Connection(host, port, key)
    body = {"kind": "prompt.generate", "input": {"manual_prompt": f"Explain tides ({number})"}}
    try:
        while loop.time() < stop_at:
            try:
                started = time.perf_counter()
                status, headers, content = await connection.request("POST", "/v1/jobs", body)
                result.submit_ms.append((time.perf_counter() - started) * 1000)
                result.statuses[status] += 1
                if status == 429:
                    retry_after = headers.get("retry-after")
                    if retry_after is None:
                        result.rate_limited_without_retry_after += 1
                    pause = float(retry_after or 1)
                    await asyncio.sleep(max(0.0, min(pause, stop_at - loop.time())))
                    continue
                if status not in (200, 202):
                    await asyncio.sleep(0.5)
                    continue
                job_id = json.loads(content)["id"]
                result.accepted.append(job_id)
                await _follow(result, connection, job_id, stop_at)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                result.errors[type(exc).__name__] += 1
                connection.close()
                await asyncio.sleep(0.2)
    finally:
        connection.close()


async def _follow(result: LevelResult, connection: Connection, job_id: str, stop_at: float) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < stop_at:
        await asyncio.sleep(POLL_INTERVAL)
        started = time.perf_counter()
        status, _, content = await connection.request("GET", f"/v1/jobs/{job_id}")
        result.status_ms.append((time.perf_counter() - started) * 1000)
        result.statuses[status] += 1
        if status == 200:
            state = json.loads(content)["status"]
            if state in TERMINAL:
                result.ended[job_id] = state
                return


async def _monitor(
    result: LevelResult, dsn: str | None, database: str | None, pids: dict[str, list[int]]
) -> None:
    """Sample PostgreSQL connections and process memory until cancelled."""
    conn = await asyncpg.connect(dsn) if dsn else None
    try:
        while True:
            if conn is not None:
                count = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", database
                )
                result.peak_pg_connections = max(result.peak_pg_connections, int(count))
            for name, group in pids.items():
                try:
                    total = sum(rss_mb(pid) for pid in group)
                except OSError:
                    continue
                result.peak_rss_mb[name] = max(result.peak_rss_mb.get(name, 0.0), total)
            await asyncio.sleep(0.25)
    finally:
        if conn is not None:
            await conn.close()


async def _drain(result: LevelResult, base_url: str, admin_key: str) -> None:
    """Wait (bounded) for the jobs the clients left running when the time was up."""
    pending = [job_id for job_id in result.accepted if job_id not in result.ended]
    deadline = time.monotonic() + DRAIN_SECONDS
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=30
    ) as http:
        while pending and time.monotonic() < deadline:
            still = []
            for job_id in pending:
                response = await http.get(f"/v1/jobs/{job_id}")
                state = response.json().get("status") if response.status_code == 200 else None
                if state in TERMINAL:
                    result.ended[job_id] = str(state)
                else:
                    still.append(job_id)
            pending = still
            if pending:
                await asyncio.sleep(0.5)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_level(
    clients: int,
    seconds: float,
    *,
    base_url: str,
    keys: Sequence[str],
    admin_key: str,
    dsn: str | None = None,
    pids: dict[str, list[int]] | None = None,
) -> LevelResult:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    result = LevelResult(clients=clients)
    database = urlsplit(dsn).path.lstrip("/") if dsn else None
    monitor = asyncio.create_task(_monitor(result, dsn, database, pids or {}))
    loop = asyncio.get_running_loop()
    started, cpu = loop.time(), _cpu()
    stop_at = started + seconds
    await asyncio.gather(
        *(_client(result, host, port, keys[i % len(keys)], stop_at, i) for i in range(clients))
    )
    result.seconds = loop.time() - started
    result.client_cpu_seconds = _cpu() - cpu
    await _drain(result, base_url, admin_key)
    monitor.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await monitor
    return result


# --- running it ------------------------------------------------------------------------------


def rows(results: Sequence[LevelResult]) -> list[Row]:
    made: list[Row] = []
    for r in results:
        name = f"load {r.clients} clients"
        submit, status = _percentiles(r.submit_ms), _percentiles(r.status_ms)
        made += [
            Row(name, "requests/s", r.rate, "req/s"),
            Row(name, "submit p50 / p95 / p99", submit["p50"] or 0, "ms",
                note=f"p95 {submit['p95']} ms, p99 {submit['p99']} ms"),
            Row(name, "status p50 / p95 / p99", status["p50"] or 0, "ms",
                note=f"p95 {status['p95']} ms, p99 {status['p99']} ms"),
            Row(name, "5xx answers", r.server_errors, "", target="0", met=r.server_errors == 0),
            Row(name, "429 (with Retry-After)", r.statuses.get(429, 0), "",
                met=r.rate_limited_without_retry_after == 0),
            Row(name, "accepted jobs not completed", len(r.accepted) - r.completed, "",
                target="0", met=r.completed == len(r.accepted)),
            Row(name, "peak PostgreSQL connections", r.peak_pg_connections, ""),
            *(Row(name, f"peak RSS {proc}", mb, "MB") for proc, mb in r.peak_rss_mb.items()),
        ]  # fmt: skip
    return made


async def own_stack(
    template: Template, levels: Sequence[int], seconds: float, log: Any = print
) -> list[LevelResult]:
    """Start a stack (API + 2 workers, shipped defaults), run every level against it."""
    results = []
    async with stack(template) as running:
        api = running.start_api()
        workers: list[Proc] = [await running.start_worker(), jobrelay_worker(running.env).start()]
        try:
            users = await running.make_users(max(levels), tokens=10**12)
            assert running.admin is not None
            pids = {"api": [api.pid], "workers": [w.pid for w in workers]}
            for clients in levels:
                log(f"load: {clients} clients for {seconds:.0f} s")
                result = await run_level(
                    clients,
                    seconds,
                    base_url=api.url,
                    keys=[u.key for u in users],
                    admin_key=running.admin.key,
                    dsn=running.dsn,
                    pids=pids,
                )
                results.append(result)
                log(f"load: {json.dumps(result.summary())}")
            if "unexpected error" in api.log():
                log("load: the API logged unexpected errors")
        finally:
            for worker in workers:
                worker.stop()
    return results


async def run(ctx: Context) -> list[Row]:
    """Entry point for `python -m bench`."""
    results = await own_stack(ctx.template, LEVELS, ctx.seconds(20, 2.5), log=ctx.log)
    return rows(results)


async def _users_via_api(base_url: str, admin_key: str, count: int) -> list[str]:
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=30
    ) as http:
        keys = []
        for _ in range(count):
            response = await http.post(
                "/v1/users",
                json={"name": f"load-{uuid.uuid4().hex[:8]}", "role": "user", "tokens": 10**12},
            )
            response.raise_for_status()
            keys.append(response.json()["api_key"])
    return keys


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2.5 s per level instead of 20")
    parser.add_argument("--seconds", type=float, help="seconds per level")
    parser.add_argument("--clients", type=int, nargs="+", default=list(LEVELS))
    parser.add_argument("--url", help="an API already running (needs --key)")
    parser.add_argument("--key", help="its admin API key (users are created with it)")
    parser.add_argument("--dsn", help="its PostgreSQL, to count connections (optional)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    seconds = args.seconds or (2.5 if args.quick else 20.0)
    results: list[LevelResult] = []
    if args.url:
        if not args.key:
            parser.error("--url needs --key")
        keys = await _users_via_api(args.url, args.key, max(args.clients))
        for clients in args.clients:
            print(f"load: {clients} clients for {seconds:.0f} s", file=sys.stderr)
            results.append(
                await run_level(
                    clients, seconds, base_url=args.url, keys=keys, admin_key=args.key,
                    dsn=args.dsn,
                )
            )  # fmt: skip
    else:
        backends = Backends.find()
        template = Template(backends)
        try:
            results = await own_stack(
                template, args.clients, seconds, log=lambda m: print(m, file=sys.stderr)
            )
        finally:
            await template.drop()
            backends.stop()
    report = Report()
    report.add(rows(results))
    print(render(report))
    if args.json:
        summaries = json.dumps([r.summary() for r in results], indent=2)
        await asyncio.to_thread(Path(args.json).write_text, summaries + "\n")
    failed = any(r.server_errors or r.completed != len(r.accepted) for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    from bench.httpload import run_sync

    sys.exit(run_sync(main(sys.argv[1:])))
