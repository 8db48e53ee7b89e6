"""`--watch` prints a job's live output under the progress bar as it arrives: the CLI runs in a
real pseudo-terminal while a real local OpenAI-compatible server streams the answer."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import subprocess
import threading
import time
from typing import Any

import redis.asyncio as aioredis

from jobrelay import broadcast
from tests.conftest import MakeUser, Stack
from tests.prompts.streaming_model import StreamingChatModel
from tests.support.jobs import prompt_input, submit
from tests.support.peers import serve
from tests.support.processes import CLI, base_env

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


class Terminal:
    """A command on a pseudo-terminal, its screen output collected as it comes."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        controller, child = pty.openpty()
        self.process = subprocess.Popen(
            args,
            env={**env, "TERM": "xterm-256color", "COLUMNS": "200", "LINES": "50"},
            stdin=child,
            stdout=child,
            stderr=child,
            close_fds=True,
        )
        os.close(child)
        self._controller = controller
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._controller, 65536)
            except OSError:
                return
            if not data:
                return
            self._chunks.append(data)

    @property
    def screen(self) -> str:
        return ANSI.sub("", b"".join(self._chunks).decode("utf-8", errors="replace"))

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never showed; the screen:\n{self.screen[-3000:]}")
            time.sleep(0.05)

    def finish(self, timeout: float = 60) -> int:
        code = self.process.wait(timeout)
        self._reader.join(5)
        os.close(self._controller)
        return code


async def test_watch_prints_the_output_as_it_arrives(spawn_stack: Any, make_user: MakeUser) -> None:
    words = [f"part{number:02d} " for number in range(29)] + ["fin."]
    model = StreamingChatModel(words, pause=0.02, hold_after=10)
    with serve(model.app) as url:
        stack: Stack = await spawn_stack(llm_base_url=f"{url}/v1", llm_model="streamer")
        user = await make_user(tokens=700, on=stack)
        env = base_env(stack.cli_env(user.key))
        terminal = Terminal([*CLI, "submit", "prompt", "watch the words", "--watch"], env)
        assert await asyncio.to_thread(model.holding.wait, 30)
        held = "".join(words[:10]).rstrip()
        await asyncio.to_thread(terminal.wait_for, held)
        items = (await user.client.get("/v1/jobs")).json()["items"]
        assert [item["status"] for item in items] == ["processing"], "shown while it runs"
        assert "part10" not in terminal.screen

        model.release()
        code = await asyncio.to_thread(terminal.finish)
    assert code == 0, terminal.screen[-3000:]
    assert all(word.strip() in terminal.screen for word in words), "then the rest"
    assert "Prompt generated successfully" in terminal.screen


async def test_jobs_watch_joins_halfway_with_the_text_so_far(
    spawn_stack: Any, make_user: MakeUser
) -> None:
    words = [f"bit{number:02d} " for number in range(19)] + ["stop."]
    model = StreamingChatModel(words, pause=0.02, hold_after=8)
    with serve(model.app) as url:
        stack: Stack = await spawn_stack(llm_base_url=f"{url}/v1", llm_model="streamer")
        user = await make_user(tokens=700, on=stack)
        job = await submit(user.client, "prompt.generate", prompt_input("join late"))
        assert await asyncio.to_thread(model.holding.wait, 30)
        env = base_env(stack.cli_env(user.key))
        terminal = Terminal([*CLI, "jobs", "watch", job["id"]], env)
        await asyncio.to_thread(terminal.wait_for, "".join(words[:8]).rstrip())
        model.release()
        code = await asyncio.to_thread(terminal.finish)
    assert code == 0, terminal.screen[-3000:]
    assert all(word.strip() in terminal.screen for word in words)


async def test_off_a_terminal_the_output_ends_with_a_newline(
    spawn_stack: Any, make_user: MakeUser
) -> None:
    words = [f"piece{number:02d} " for number in range(9)] + ["at the end."]
    model = StreamingChatModel(words, pause=0.01, hold_after=5)
    with serve(model.app) as url:
        stack: Stack = await spawn_stack(llm_base_url=f"{url}/v1", llm_model="streamer")
        user = await make_user(tokens=700, on=stack)
        cli = await asyncio.to_thread(
            subprocess.Popen,
            [*CLI, "submit", "prompt", "piped", "--watch"],
            env=base_env(stack.cli_env(user.key)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert await asyncio.to_thread(model.holding.wait, 30)
        # Held until the CLI follows the job, so its text is streamed to it, not only stored.
        job_id = (await user.client.get("/v1/jobs")).json()["items"][0]["id"]
        await _until_followed(stack, job_id)
        model.release()
        stdout, stderr = await asyncio.to_thread(cli.communicate, timeout=60)
    assert cli.returncode == 0, stderr
    # The live text is its own line, the panel after.
    assert re.search(r"at the end\.\n", stdout), stdout
    assert "at the end.╭" not in stdout


async def _until_followed(stack: Stack, job_id: str, timeout: float = 30) -> None:
    """Until someone listens to the job's events (the API, for the CLI's stream)."""
    redis = aioredis.Redis.from_url(stack.env["JOBRELAY_REDIS_URL"])
    try:
        deadline = time.monotonic() + timeout
        while not dict(await redis.pubsub_numsub(broadcast.channel(job_id))).get(
            broadcast.channel(job_id).encode()
        ):
            assert time.monotonic() < deadline, "the CLI never followed the job"
            await asyncio.sleep(0.05)
    finally:
        await redis.aclose()
