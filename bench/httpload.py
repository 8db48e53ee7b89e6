"""A lean HTTP/1.1 load generator: keep-alive connections driven by raw asyncio streams on uvloop.

Two cores are shared by the server under test, PostgreSQL, Redis and this client, so the client
must cost far less per request than the server. A general-purpose client (httpx) spends about as
much CPU per request as the FastAPI handler it measures; writing prebuilt request bytes and
reading `content-length` bodies costs a small fraction of that. The client's own CPU use is
reported with every run, and `processes > 1` splits the connections across processes.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import resource
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

MakeRequest = Callable[[int], bytes]


def request_bytes(
    method: str,
    path: str,
    *,
    port: int,
    headers: dict[str, str] | None = None,
    body: Any = None,
) -> bytes:
    """One HTTP/1.1 request, ready to write (JSON body when `body` is not None)."""
    lines = [f"{method} {path} HTTP/1.1", f"host: 127.0.0.1:{port}"]
    payload = b""
    if body is not None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        lines.append("content-type: application/json")
        lines.append(f"content-length: {len(payload)}")
    lines.extend(f"{k}: {v}" for k, v in (headers or {}).items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)  # seconds, measured requests only
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0  # length of the measurement window
    client_cpu: float = 0.0  # CPU seconds the client used in the window
    bodies: list[bytes] = field(default_factory=list)  # kept when asked for

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        """In milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
        return ordered[index] * 1000

    @property
    def p50(self) -> float:
        return self.percentile(0.50)

    @property
    def p99(self) -> float:
        return self.percentile(0.99)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.latencies) * 1000 if self.latencies else float("nan")

    @property
    def client_cores(self) -> float:
        """How much of one core the client used during the window."""
        return self.client_cpu / self.seconds if self.seconds else 0.0

    def merge(self, other: LoadResult) -> None:
        self.latencies.extend(other.latencies)
        self.statuses.update(other.statuses)
        self.seconds = max(self.seconds, other.seconds)
        self.client_cpu += other.client_cpu
        self.bodies.extend(other.bodies)

    def unexpected(self, expected: Sequence[int]) -> dict[int, int]:
        return {s: n for s, n in self.statuses.items() if s not in expected}


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lowered = head.lower()
    at = lowered.find(b"\r\ncontent-length:")
    if at < 0:
        raise RuntimeError(f"response without content-length: {head[:200]!r}")
    end = lowered.find(b"\r\n", at + 2)
    length = int(lowered[at + 17 : end])
    body = await reader.readexactly(length) if length else b""
    return status, body


async def run(
    port: int,
    make_request: MakeRequest,
    *,
    connections: int,
    duration: float | None = None,
    total: int | None = None,
    warmup: float = 0.0,
    keep_bodies: bool = False,
    offset: int = 0,
    stride: int = 1,
) -> LoadResult:
    """Drive `connections` keep-alive connections, each sending its next request as soon as
    the previous answer is read, for `duration` seconds after `warmup`, or until `total`
    requests were sent. Request number `n` (from `offset`, step `stride`) is `make_request(n)`.
    """
    if (duration is None) == (total is None):
        raise ValueError("give either duration or total")
    loop = asyncio.get_running_loop()
    result = LoadResult()
    counter = iter(range(offset, 1 << 62, stride))
    sent = 0
    start = loop.time()
    measure_from = start + warmup
    stop_at = measure_from + duration if duration is not None else float("inf")
    cpu_start: list[float] = []

    async def connection() -> None:
        nonlocal sent
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                now = loop.time()
                if now >= stop_at or (total is not None and sent >= total):
                    return
                if not cpu_start and now >= measure_from:
                    cpu_start.append(_cpu())
                sent += 1
                request = make_request(next(counter))
                began = time.perf_counter()
                status, body = await _exchange(reader, writer, request)
                elapsed = time.perf_counter() - began
                if now >= measure_from and loop.time() <= stop_at:
                    result.latencies.append(elapsed)
                    result.statuses[status] += 1
                    if keep_bodies:
                        result.bodies.append(body)
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    ended = min(loop.time(), stop_at)
    result.seconds = ended - measure_from
    result.client_cpu = _cpu() - (cpu_start[0] if cpu_start else _cpu())
    return result


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child(args: tuple[int, MakeRequest, dict[str, Any]]) -> LoadResult:
    port, make_request, options = args
    return run_sync(run(port, make_request, **options))


def run_sync(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def run_processes(
    port: int,
    make_request: MakeRequest,
    *,
    processes: int,
    connections: int,
    **options: Any,
) -> LoadResult:
    """`run` split across `processes` client processes (`make_request` must be picklable)."""
    if processes <= 1:
        result: LoadResult = run_sync(run(port, make_request, connections=connections, **options))
        return result
    share = [connections // processes + (i < connections % processes) for i in range(processes)]
    total = options.pop("total", None)
    jobs = []
    for i, conns in enumerate(share):
        child_options = {**options, "connections": conns, "offset": i, "stride": processes}
        if total is not None:
            child_options["total"] = total // processes + (i < total % processes)
        jobs.append((port, make_request, child_options))
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        parts = pool.map(_child, jobs)
    merged = LoadResult()
    for part in parts:
        merged.merge(part)
    return merged
