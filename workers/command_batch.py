"""Redis commands of many jobs in one MULTI/EXEC: while one batch is on its way, the next one
gathers (group commit), so a lone caller waits one round trip and a busy worker sends one
transaction for every job that ended meanwhile instead of one each."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from jobrelay.broadcast import Command


class CommandBatch:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._waiting: list[tuple[list[Command], asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self.sent = 0  # transactions sent, for tests

    async def send(self, commands: list[Command]) -> None:
        """Run the commands in a transaction shared with the other callers of this moment."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((commands, future))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())
        await future

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                async with self.redis.pipeline(transaction=True) as pipe:
                    for commands, _ in batch:
                        for command in commands:
                            pipe.execute_command(*command)
                    await pipe.execute()
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
            else:
                self.sent += 1
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)
