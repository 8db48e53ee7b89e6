"""One-statement reads on the request path, on plain asyncpg connections.

Clients poll a job far more often than they do anything else, and through SQLAlchemy the one-row
read cost about 230 µs of CPU under 32 clients: the engine's checkout and check-in, its
isolation-level bookkeeping, the statement's cache lookup and the result wrapping. The same
prepared statement on an asyncpg connection taken from a list costs about 30 µs. This pool
holds a few such connections for reads only: they never run a write or change session state,
so nothing needs resetting between uses.

Behind PgBouncer in transaction mode (`db_pgbouncer`) each read runs in its own transaction,
since an unnamed statement prepared outside one may be run on another server.

Reads by key (`fetch_grouped`) go further: the keys asked for while an earlier statement of the
same query is in flight are read together, in the next one (`WHERE id = ANY($1)`). A lone read
goes at once; under load one round trip, one statement's parse and bind and one row
description serve a group, and PostgreSQL answers a group with one index scan.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import asyncpg

from jobrelay.config import Settings
from jobrelay.db.engine import connect_args

# The arguments of `connect_args` that are asyncpg's own (the others are SQLAlchemy's dialect's).
_ASYNCPG_ARGS = ("server_settings", "statement_cache_size", "timeout", "command_timeout")
# What a read raises when its connection is gone rather than its statement wrong.
_LOST = (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, OSError)
# Statements of one grouped query in flight at once: one is read while the next group gathers.
GROUP_READERS = 2
MAX_GROUP = 500


class Record(asyncpg.Record):  # type: ignore[misc]  # asyncpg ships no type information
    """A row whose columns also read as attributes (`row.status`), as SQLAlchemy's rows do."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def record_class(name: str, columns: Iterable[str]) -> type[Record]:
    """A `Record` with a property per column: read at the cost of an index, where the
    `__getattr__` fallback costs about half a microsecond a column (a job's document reads 17)."""
    return type(name, (Record,), {column: property(itemgetter(column)) for column in columns})


class ReadPool:
    """Up to `size` connections, opened on first need, handed out newest first and to waiters
    in arrival order. A connection found closed (PostgreSQL restarted, the network cut) is
    replaced; a read that fails because its connection was lost is made once more on another.
    A wait for a free connection is bounded by the reads ahead of it, each bounded by the
    statement timeout."""

    def __init__(self, settings: Settings, size: int) -> None:
        args = connect_args(settings)
        self._dsn = settings.asyncpg_dsn
        self._connect_args = {name: args[name] for name in _ASYNCPG_ARGS if name in args}
        self._in_transaction = settings.db_pgbouncer
        self.size = size
        self._idle: list[asyncpg.Connection] = []
        self._waiters: collections.deque[asyncio.Future[asyncpg.Connection | None]] = (
            collections.deque()
        )
        self._opened = 0
        self._closed = False
        self._groups: dict[str, _Groups] = {}

    async def fetch(self, query: str, *args: Any, record: type[Record] = Record) -> list[Record]:
        """The rows. A read whose pooled connection turns out to be lost (PostgreSQL restarted,
        the network cut) is made once more, on a connection opened for it."""
        conn, reused = await self._acquire()
        try:
            return await self._run(conn, query, args, record)
        except _LOST as exc:
            if not reused or isinstance(exc, TimeoutError):
                raise
        conn, _ = await self._acquire()
        return await self._run(conn, query, args, record)

    async def fetch_grouped(
        self, query: str, key: Hashable, *, key_column: str, record: type[Record] = Record
    ) -> Record | None:
        """The row whose `key_column` is `key`, or None. `query` takes an array of keys as `$1`
        and returns at most a row per key; the keys asked for while a statement of it is in
        flight are read together in the next. A failed read fails every caller of its group."""
        groups = self._groups.get(query)
        if groups is None:
            groups = self._groups[query] = _Groups(self, query, key_column, record)
        return await groups.get(key)

    async def _run(
        self, conn: asyncpg.Connection, query: str, args: tuple[Any, ...], record: type[Record]
    ) -> list[Record]:
        try:
            if self._in_transaction:
                async with conn.transaction():
                    rows: list[Record] = await conn.fetch(query, *args, record_class=record)
            else:
                rows = await conn.fetch(query, *args, record_class=record)
        except BaseException as exc:
            # A statement's own error leaves its connection fit for the next; a lost connection,
            # a timeout, or a cancellation mid-protocol does not.
            if isinstance(exc, Exception) and not isinstance(exc, _LOST) and not conn.is_closed():
                self._release(conn)
            else:
                self._discard(conn)
            raise
        self._release(conn)
        return rows

    async def _acquire(self) -> tuple[asyncpg.Connection, bool]:
        """A connection, and whether it was used before."""
        while True:
            if self._closed:
                raise asyncpg.InterfaceError("the read pool is closed")
            while self._idle:
                conn = self._idle.pop()
                if not conn.is_closed():
                    return conn, True
                self._opened -= 1
            if self._opened < self.size:
                self._opened += 1
                try:
                    return await self._open(), False
                except BaseException:
                    self._opened -= 1
                    self._wake_one(None)
                    raise
            waiter: asyncio.Future[asyncpg.Connection | None] = (
                asyncio.get_running_loop().create_future()
            )
            self._waiters.append(waiter)
            try:
                handed = await waiter
            except BaseException:
                # Cancelled while waiting: a cancelled waiter stays queued and is skipped; one
                # handed a connection (or a free place) just before passes it on.
                if not waiter.cancelled():
                    self._pass_on(waiter.result())
                raise
            if handed is not None:
                return handed, True

    async def _open(self) -> asyncpg.Connection:
        conn: asyncpg.Connection = await asyncpg.connect(self._dsn, **self._connect_args)
        try:
            if self._in_transaction:
                async with conn.transaction():
                    await _decode_json(conn)
            else:
                await _decode_json(conn)
        except BaseException:
            conn.terminate()
            raise
        return conn

    def _pass_on(self, conn: asyncpg.Connection | None) -> None:
        if conn is None:
            self._wake_one(None)
        else:
            self._release(conn)

    def _release(self, conn: asyncpg.Connection) -> None:
        if self._closed:
            self._discard(conn)
        elif not self._wake_one(conn):
            self._idle.append(conn)

    def _discard(self, conn: asyncpg.Connection) -> None:
        conn.terminate()
        self._opened -= 1
        self._wake_one(None)  # a waiter may open one in its place

    def _wake_one(self, conn: asyncpg.Connection | None) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    async def close(self) -> None:
        """Close the idle connections; those in use are closed as they come back."""
        self._closed = True
        idle, self._idle = self._idle, []
        self._opened -= len(idle)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()
        for conn in idle:
            try:
                await asyncio.wait_for(conn.close(), timeout=2)
            except (OSError, TimeoutError, asyncpg.InterfaceError):
                conn.terminate()


@dataclass(eq=False)
class _Groups:
    """The callers of one grouped query, waiting in arrival order, and its readers."""

    pool: ReadPool
    query: str
    key_column: str
    record: type[Record]
    _waiting: list[tuple[Hashable, asyncio.Future[Record | None]]] = field(default_factory=list)
    # Readers running, counted down by the reader itself in the step that finds nothing more
    # waiting: a count kept by done-callbacks lags a step, and a caller arriving in that step
    # would wait with no reader to come.
    _readers: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def get(self, key: Hashable) -> Record | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Record | None] = loop.create_future()
        self._waiting.append((key, future))
        if self._readers < GROUP_READERS:
            # A task of its own: a caller that goes away (its client hung up) does not take
            # the read of the others down with it.
            self._readers += 1
            reader = loop.create_task(self._read_while_waiting())
            self._tasks.add(reader)
            reader.add_done_callback(self._tasks.discard)
        return await future

    async def _read_while_waiting(self) -> None:
        try:
            await self._read_groups()
        finally:
            self._readers -= 1

    async def _read_groups(self) -> None:
        while self._waiting:
            group = self._waiting[:MAX_GROUP]
            del self._waiting[:MAX_GROUP]
            keys = list(dict.fromkeys(key for key, _ in group))
            try:
                rows = await self.pool.fetch(self.query, keys, record=self.record)
            except BaseException as exc:
                failure = (
                    exc
                    if isinstance(exc, Exception)
                    else asyncpg.InterfaceError("the read was cancelled")
                )
                for _, future in group:
                    if not future.done():
                        future.set_exception(failure)
                if not isinstance(exc, Exception):
                    raise
                continue
            found = {row[self.key_column]: row for row in rows}
            for key, future in group:
                if not future.done():
                    future.set_result(found.get(key))


async def _decode_json(conn: asyncpg.Connection) -> None:
    """JSON columns as Python values, as the SQLAlchemy engine returns them."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, schema="pg_catalog", encoder=json.dumps, decoder=json.loads, format="text"
        )


__all__ = ["ReadPool", "Record", "record_class"]
