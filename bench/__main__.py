"""`python -m bench [--quick] [--only NAME ...]`: every benchmark, then one table.

The ingestion and load benchmarks (`bench/ingest.py`, `bench/load.py`) join the run when they
are present: a module with `async def run(ctx)` or `run(quick=...)` returning rows is called in
this process; any other is run as `python -m bench.<name> [--quick]` and its output shown.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import inspect
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

from bench import callbacks, drain, endtoend, status, submit
from bench.context import Context
from bench.environment import REPO, Backends
from bench.report import Report, Row, render
from bench.stack import Template

Benchmark = Callable[[Context], Awaitable[list[Row]]]
OURS: dict[str, Benchmark] = {
    "submit": submit.run,
    "status": status.run,
    "callbacks": callbacks.run,
    "endtoend": endtoend.run,
    "drain": drain.run,
}
OPTIONAL = ("ingest", "load", "pgbouncer", "scale")


def machine(backends: Backends, pg_version: str) -> str:
    total_kb = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                total_kb = int(line.split()[1])
    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} cores ({cpu}), {total_kb / 1024 / 1024:.1f} GiB RAM, "
        f"Python {platform.python_version()}, PostgreSQL {pg_version}, "
        f"Redis {backends.redis_version()} ({backends.origin})"
    )


def _optional(name: str) -> ModuleType | None:
    if importlib.util.find_spec(f"bench.{name}") is None:
        return None
    return importlib.import_module(f"bench.{name}")


async def run_optional(name: str, module: ModuleType, ctx: Context) -> list[Row]:
    entry: Any = getattr(module, "run", None)
    if entry is not None:
        params = inspect.signature(entry).parameters
        if "ctx" in params:
            result = entry(ctx)
        elif "quick" in params:
            result = entry(quick=ctx.quick)
        else:
            entry = None
        if entry is not None:
            if inspect.isawaitable(result):
                result = await result
            if isinstance(result, list):
                return result
            return []
    args = [sys.executable, "-m", f"bench.{name}", *(["--quick"] if ctx.quick else [])]
    done = await asyncio.to_thread(
        subprocess.run, args, cwd=REPO, capture_output=True, text=True, check=False
    )
    print(f"\n## bench.{name}\n{done.stdout}{done.stderr[-2000:] if done.returncode else ''}")
    if done.returncode:
        raise RuntimeError(f"bench.{name} exited with {done.returncode}")
    return []


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts, under a minute")
    parser.add_argument(
        "--only", nargs="+", choices=[*OURS, *OPTIONAL], help="run only these benchmarks"
    )
    parser.add_argument("--profile", metavar="DIR", help="record py-spy profiles into DIR")
    args = parser.parse_args(argv)
    backends = Backends.find()
    template = Template(backends)
    ctx = Context(backends, template, quick=args.quick, profile_dir=args.profile)
    report = Report()
    failed = False
    started = time.monotonic()
    try:
        report.notes.append(machine(backends, await backends.server_version()))
        wanted = args.only or [*OURS, *OPTIONAL]
        for name in wanted:
            try:
                if name in OURS:
                    ctx.log(f"{name}: starting")
                    report.add(await OURS[name](ctx))
                elif (module := _optional(name)) is not None:
                    ctx.log(f"{name}: starting")
                    report.add(await run_optional(name, module, ctx))
            except Exception:
                failed = True
                traceback.print_exc()
                report.notes.append(f"{name}: FAILED (see the traceback above)")
    finally:
        await template.drop()
        backends.stop()
    report.notes.append(
        f"python -m bench{' --quick' if args.quick else ''}: {time.monotonic() - started:.0f} s"
    )
    print(render(report))
    return 1 if failed else 0


if __name__ == "__main__":
    from bench.httpload import run_sync

    sys.exit(run_sync(main(sys.argv[1:])))
