"""Both servers under one data directory: start or take over, remember ports, stop."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from jobrelay.embedded.postgres import DATABASE_NAME, POSTGRES_USER, start_postgres
from jobrelay.embedded.processes import LOOPBACK, ChildServer
from jobrelay.embedded.redis import start_redis

__all__ = ["EmbeddedServices", "start_embedded"]

logger = logging.getLogger(__name__)

_STATE_FILE = "embedded.json"
_LOCK_FILE = ".embedded.lock"


@dataclass
class EmbeddedServices:
    """URLs of the embedded servers, and the means to stop the ones this process started.

    A `None` URL means that server was not requested. Servers found already running under
    another live process are used but left running by `stop()`.
    """

    database_url: str | None
    redis_url: str | None
    _children: list[ChildServer] = field(default_factory=list, repr=False)
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        """Stop what this handle started, newest first; safe to call more than once."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        while self._children:
            child = self._children.pop()
            try:
                child.stop()
            except Exception:
                logger.exception("could not stop embedded %s", child.name)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_embedded(
    data_dir: Path, *, postgres: bool = True, redis: bool = True
) -> EmbeddedServices:
    """Start (or take over) PostgreSQL and Redis under `data_dir` and return their URLs.

    Blocks until both accept connections. Call it from the main thread so the servers get a
    parent-death signal; call `stop()` (or use the result as a context manager) when done.
    """
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "logs").mkdir(exist_ok=True)
    services = EmbeddedServices(database_url=None, redis_url=None)
    with _locked(data_dir / _LOCK_FILE):
        state = _read_state(data_dir)
        try:
            if postgres:
                port, child = start_postgres(data_dir, state)
                state["postgres_port"] = port
                services.database_url = (
                    f"postgresql+asyncpg://{POSTGRES_USER}@{LOOPBACK}:{port}/{DATABASE_NAME}"
                )
                if child is not None:
                    services._children.append(child)
                    state["postgres_owner_pid"] = os.getpid()
            if redis:
                port, child = start_redis(data_dir, state)
                state["redis_port"] = port
                services.redis_url = f"redis://{LOOPBACK}:{port}/0"
                if child is not None:
                    services._children.append(child)
                    state["redis_owner_pid"] = os.getpid()
        except BaseException:
            services.stop()
            raise
        _write_state(data_dir, state)
    atexit.register(services.stop)
    return services


def _read_state(data_dir: Path) -> dict[str, int]:
    """Ports and owner pids from the last start; empty when missing or unreadable."""
    try:
        raw = json.loads((data_dir / _STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {key: value for key, value in raw.items() if isinstance(value, int)}


def _write_state(data_dir: Path, state: dict[str, int]) -> None:
    scratch = data_dir / f"{_STATE_FILE}.tmp"
    scratch.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    scratch.replace(data_dir / _STATE_FILE)


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Serialise starts on one data directory across processes."""
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
