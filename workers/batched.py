"""ARQ's per-job Redis round trips, batched: the part of ARQ this project owns.

ARQ starts a job with four round trips (WATCH, EXISTS, ZSCORE, MULTI/EXEC), one job after
another, then reads it with a MULTI/EXEC of its own, and finishes it with one more. Here every
job that has a free slot is checked, marked in progress and read in one Lua call
(`start_jobs`), and the finishing commands of every job ending meanwhile go in one MULTI/EXEC
(`finish_job`). `run_job` is ARQ 0.28's, taking the job as the start script read it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from arq.constants import (
    abort_jobs_ss,
    in_progress_key_prefix,
    job_key_prefix,
    keep_cronjob_progress,
    result_key_prefix,
    retry_key_prefix,
)
from arq.jobs import SerializationError, deserialize_job_raw, serialize_result
from arq.utils import args_to_string, ms_to_datetime, timestamp_ms, to_ms, truncate
from arq.worker import JobExecutionFailed, Retry, RetryJob, Worker
from redis.exceptions import RedisError

from jobrelay.broadcast import Command
from workers.command_batch import CommandBatch

logger = logging.getLogger("arq.worker")

RETRY_KEY_SECONDS = 88_400  # as ARQ keeps a job's try counter

# For every job with a free slot, in one round trip: ARQ's checks (not running elsewhere, still
# queued, due), then marked in progress, read, its try counted, its abort request taken.
# KEYS: the queue, the abort set, then per job its in-progress, job and retry keys.
# ARGV: now (ms), the in-progress timeout (ms), the retry key's lifetime (s), then the job ids.
# Returns per job {0} to leave it alone, or {score, job data or nil, try, aborted}.
_START = """
local out = {}
for i = 1, (#KEYS - 2) / 3 do
  local id = ARGV[3 + i]
  local running, job, tries = KEYS[3 * i], KEYS[3 * i + 1], KEYS[3 * i + 2]
  local score = redis.call('zscore', KEYS[1], id)
  if redis.call('exists', running) == 1 or not score or tonumber(score) > tonumber(ARGV[1]) then
    out[i] = {0}
  else
    redis.call('psetex', running, ARGV[2], '1')
    local data = redis.call('get', job)
    local try = redis.call('incr', tries)
    redis.call('expire', tries, ARGV[3])
    out[i] = {score, data, try, redis.call('zrem', KEYS[2], id)}
  end
end
return out
"""

_NO_RESULT = object()


class BatchedWorker(Worker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._start_script: Any = None
        self._finishes: CommandBatch | None = None
        # What the start script read of each job started, until its `run_job` takes it.
        self._fetched: dict[str, tuple[bytes | None, int, bool]] = {}

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """Start the jobs that have a free slot, one Lua call for all of them.

        ARQ takes a running slot before its Redis round trip for a job; when it fails, the slot
        would stay taken for good, so it is handed back here."""
        # The queue still lists the jobs this worker is running (until they finish): skipped
        # here, so each call starts jobs instead of finding them taken.
        running = self.tasks
        pending = [
            job_id
            for job_id in (raw.decode() for raw in job_ids)
            if job_id not in running or running[job_id].done()
        ]
        if self._start_script is None:
            self._start_script = self.pool.register_script(_START)
        while pending:
            await self.sem.acquire()
            taken = 1
            while taken < len(pending) and not self.sem.locked():
                await self.sem.acquire()
                taken += 1
            allowed = max(0, min(taken, self.max_jobs - self.job_counter))
            for _ in range(taken - allowed):
                self.sem.release()
            if allowed == 0:
                return
            batch, pending = pending[:allowed], pending[allowed:]
            self.job_counter += allowed
            keys = [self.queue_name, abort_jobs_ss]
            for job_id in batch:
                keys += [
                    in_progress_key_prefix + job_id,
                    job_key_prefix + job_id,
                    retry_key_prefix + job_id,
                ]
            try:
                started = await self._start_script(
                    keys=keys,
                    args=[
                        timestamp_ms(),
                        int(self.in_progress_timeout_s * 1000),
                        RETRY_KEY_SECONDS,
                        *batch,
                    ],
                )
            except (RedisError, OSError):
                for _ in batch:
                    self._release_sem_dec_counter_on_complete()
                raise
            for job_id, reply in zip(batch, started, strict=True):
                if not reply[0]:
                    self._release_sem_dec_counter_on_complete()
                    continue
                score, data, job_try, aborted = reply
                self._fetched[job_id] = (data, int(job_try), bool(aborted))
                task = self.loop.create_task(self.run_job(job_id, int(float(score))))
                task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
                self.tasks[job_id] = task

    async def run_job(self, job_id: str, score: int) -> None:
        """ARQ 0.28's `run_job`, with the job as `start_jobs` read it (its keep-result and
        logging behaviour kept)."""
        fetched = self._fetched.pop(job_id, None)
        if fetched is None:
            await super().run_job(job_id, score)
            return
        v, job_try, abort_job = fetched
        start_ms = timestamp_ms()
        function_name, enqueue_time_ms = "<unknown>", 0
        args: tuple[Any, ...] = ()
        kwargs: dict[Any, Any] = {}

        async def job_failed(exc: BaseException) -> None:
            self.jobs_failed += 1
            result_data_ = serialize_result(
                function=function_name,
                args=args,
                kwargs=kwargs,
                job_try=job_try,
                enqueue_time_ms=enqueue_time_ms,
                success=False,
                result=exc,
                start_ms=start_ms,
                finished_ms=timestamp_ms(),
                ref=f"{job_id}:{function_name}",
                serializer=self.job_serializer,
                queue_name=self.queue_name,
                job_id=job_id,
            )
            await asyncio.shield(self.finish_failed_job(job_id, result_data_))

        if not v:
            logger.warning("job %s expired", job_id)
            return await job_failed(JobExecutionFailed("job expired"))
        try:
            function_name, args, kwargs, enqueue_job_try, enqueue_time_ms = deserialize_job_raw(
                v, deserializer=self.job_deserializer
            )
        except SerializationError as e:
            logger.exception("deserializing job %s failed", job_id)
            return await job_failed(e)
        if abort_job:
            t = (timestamp_ms() - enqueue_time_ms) / 1000
            logger.info("%6.2fs ⊘ %s:%s aborted before start", t, job_id, function_name)
            return await job_failed(asyncio.CancelledError())
        try:
            function = self.functions[function_name]
        except KeyError:
            logger.warning("job %s, function %r not found", job_id, function_name)
            return await job_failed(JobExecutionFailed(f"function {function_name!r} not found"))

        if hasattr(function, "next_run"):  # a cron job
            ref = function_name
            keep_in_progress: float | None = keep_cronjob_progress
        else:
            ref = f"{job_id}:{function_name}"
            keep_in_progress = None
        if enqueue_job_try and enqueue_job_try > job_try:
            job_try = enqueue_job_try
            await self.pool.setex(retry_key_prefix + job_id, RETRY_KEY_SECONDS, str(job_try))
        max_tries = self.max_tries if function.max_tries is None else function.max_tries
        if job_try > max_tries:
            t = (timestamp_ms() - enqueue_time_ms) / 1000
            logger.warning("%6.2fs ! %s max retries %d exceeded", t, ref, max_tries)
            return await job_failed(JobExecutionFailed(f"max {max_tries} retries exceeded"))

        result: Any = _NO_RESULT
        finish = False
        timeout_s = self.job_timeout_s if function.timeout_s is None else function.timeout_s
        incr_score: int | None = None
        ctx = {
            **self.ctx,
            "job_id": job_id,
            "job_try": job_try,
            "enqueue_time": ms_to_datetime(enqueue_time_ms),
            "score": score,
        }
        if self.on_job_start:
            await self.on_job_start(ctx)
        start_ms = timestamp_ms()
        success = False
        try:
            extra = f" try={job_try}" if job_try > 1 else ""
            if (start_ms - score) > 1200:
                extra += f" delayed={(start_ms - score) / 1000:0.2f}s"
            if logger.isEnabledFor(logging.INFO):
                s = args_to_string(args, kwargs)
                t = (start_ms - enqueue_time_ms) / 1000
                logger.info("%6.2fs → %s(%s)%s", t, ref, s, extra)
            self.job_tasks[job_id] = task = self.loop.create_task(
                function.coroutine(ctx, *args, **kwargs)
            )
            try:
                result = await asyncio.wait_for(task, timeout_s)
            finally:
                del self.job_tasks[job_id]
        except (Exception, asyncio.CancelledError) as e:
            finished_ms = timestamp_ms()
            t = (finished_ms - start_ms) / 1000
            if self.retry_jobs and isinstance(e, Retry):
                incr_score = e.defer_score
                logger.info(
                    "%6.2fs ↻ %s retrying job in %0.2fs", t, ref, (e.defer_score or 0) / 1000
                )
                if e.defer_score:
                    incr_score = e.defer_score + (timestamp_ms() - score)
                self.jobs_retried += 1
            elif job_id in self.aborting_tasks and isinstance(e, asyncio.CancelledError):
                logger.info("%6.2fs ⊘ %s aborted", t, ref)
                result = e
                finish = True
                self.aborting_tasks.remove(job_id)
                self.jobs_failed += 1
            elif self.retry_jobs and isinstance(e, (asyncio.CancelledError, RetryJob)):
                logger.info("%6.2fs ↻ %s cancelled, will be run again", t, ref)
                self.jobs_retried += 1
            else:
                logger.exception("%6.2fs ! %s failed, %s: %s", t, ref, e.__class__.__name__, e)
                result = e
                finish = True
                self.jobs_failed += 1
        else:
            success = True
            finished_ms = timestamp_ms()
            if logger.isEnabledFor(logging.INFO):
                shown = "" if result is None or not self.log_results else truncate(repr(result))
                logger.info("%6.2fs ← %s ● %s", (finished_ms - start_ms) / 1000, ref, shown)
            finish = True
            self.jobs_complete += 1

        keep_forever = (
            self.keep_result_forever
            if function.keep_result_forever is None
            else function.keep_result_forever
        )
        result_timeout_s = (
            self.keep_result_s if function.keep_result_s is None else function.keep_result_s
        )
        result_data = None
        if result is not _NO_RESULT and (keep_forever or result_timeout_s > 0):
            result_data = serialize_result(
                function_name,
                args,
                kwargs,
                job_try,
                enqueue_time_ms,
                success,
                result,
                start_ms,
                finished_ms,
                ref,
                self.queue_name,
                job_id=job_id,
                serializer=self.job_serializer,
            )
        if self.on_job_end:
            await self.on_job_end(ctx)
        await asyncio.shield(
            self.finish_job(
                job_id,
                finish,
                result_data,
                result_timeout_s,
                keep_forever,
                incr_score,
                keep_in_progress,
            )
        )
        if self.after_job_end:
            await self.after_job_end(ctx)

    async def finish_job(
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
    ) -> None:
        """ARQ's `finish_job`, its commands sent in one transaction with those of every other
        job of this worker finishing meanwhile."""
        commands: list[Command] = []
        delete_keys = []
        in_progress_key = in_progress_key_prefix + job_id
        if keep_in_progress is None:
            delete_keys.append(in_progress_key)
        else:
            commands.append(("PEXPIRE", in_progress_key, to_ms(keep_in_progress)))
        if finish:
            if result_data:
                ttl = None if keep_result_forever else to_ms(result_timeout_s)
                px = ("PX", ttl) if ttl else ()
                commands.append(("SET", result_key_prefix + job_id, result_data, *px))
            delete_keys += [retry_key_prefix + job_id, job_key_prefix + job_id]
            commands.append(("ZREM", abort_jobs_ss, job_id))
            commands.append(("ZREM", self.queue_name, job_id))
        elif incr_score:
            commands.append(("ZINCRBY", self.queue_name, incr_score, job_id))
        if delete_keys:
            commands.append(("DEL", *delete_keys))
        if self._finishes is None:
            self._finishes = CommandBatch(self.pool)
        await self._finishes.send(commands)
