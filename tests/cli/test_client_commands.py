"""The CLI's HTTP commands run as a real subprocess against the running API and worker:
output, `--json`, and the contract's exit codes (0 done, 1 failed or canceled, 2 bad input,
3 unreachable)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jobrelay.embedded import free_tcp_port
from tests.conftest import MakeUser, Stack
from tests.ingestion.factories import new_prefix, student
from tests.support.jobs import prompt_input, submit, wait_for_status
from tests.support.peers import serve
from tests.support.processes import CLI, base_env, run_cli

JOB_FIELDS = {
    "id",
    "kind",
    "status",
    "progress",
    "message",
    "user_id",
    "input",
    "result",
    "error",
    "attempts",
    "external_id",
    "metadata",
    "webhook",
    "webhook_events_filter",
    "created_at",
    "started_at",
    "completed_at",
    "duration_seconds",
    "urls",
}


async def cli(
    args: list[str], env: dict[str, str], *, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run_cli, args, base_env(env), timeout=timeout)


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


async def test_submit_prompt_watch_completes(stack: Stack) -> None:
    run = await cli(
        ["submit", "prompt", "Explain recursion with a story", "--watch"], stack.cli_env()
    )
    assert run.returncode == 0, run.stderr
    assert "completed" in run.stdout
    assert "Prompt generated successfully" in run.stdout
    assert "Explain recursion with a story" in run.stdout
    assert "Traceback" not in run.stderr


async def test_submit_prompt_watch_json_is_the_final_job(stack: Stack) -> None:
    run = await cli(
        ["submit", "prompt", "Teach me regular expressions", "--watch", "--json"], stack.cli_env()
    )
    assert run.returncode == 0, run.stderr
    job = json.loads(run.stdout)
    assert set(job) >= JOB_FIELDS
    assert job["status"] == "completed"
    assert job["progress"] == 100
    assert "Teach me regular expressions" in job["result"]["prompt"]


async def test_watch_of_a_failing_job_exits_1(stack: Stack, make_user: MakeUser) -> None:
    poor = await make_user(tokens=10)
    run = await cli(["submit", "prompt", "Too expensive", "--watch"], stack.cli_env(poor.key))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "failed" in run.stdout
    assert "insufficient_tokens" in run.stdout


async def test_submit_options_reach_the_job(stack: Stack) -> None:
    key = f"cli-{uuid.uuid4()}"
    args = [
        "submit",
        "prompt",
        "Same twice",
        "--metadata",
        "team=growth",
        "--metadata",
        "ticket=JR-7",
        "--idempotency-key",
        key,
        "--json",
    ]
    first = await cli(args, stack.cli_env())
    second = await cli(args, stack.cli_env())
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    job, again = json.loads(first.stdout), json.loads(second.stdout)
    assert again["id"] == job["id"]
    assert job["metadata"] == {"team": "growth", "ticket": "JR-7"}
    assert job["kind"] == "prompt.generate"
    assert job["input"] == {"manual_prompt": "Same twice"}


async def test_jobs_list_json_contains_the_job(stack: Stack, make_user: MakeUser) -> None:
    user = await make_user()
    job = await submit(user.client, "prompt.generate", prompt_input("Listed by the CLI"))
    run = await cli(
        ["jobs", "list", "--json", "--kind", "prompt.generate", "--limit", "5"],
        stack.cli_env(user.key),
    )
    assert run.returncode == 0, run.stderr
    page = json.loads(run.stdout)
    assert [item["id"] for item in page["items"]] == [job["id"]]
    assert page["next_cursor"] is None

    table = await cli(["jobs", "list"], stack.cli_env(user.key))
    assert table.returncode == 0, table.stderr
    assert job["id"] in table.stdout


async def test_jobs_list_pages_with_the_cursor(stack: Stack, make_user: MakeUser) -> None:
    user = await make_user()
    ids = [
        (await submit(user.client, "prompt.generate", prompt_input(f"page {n}")))["id"]
        for n in range(3)
    ]
    first = json.loads(
        (await cli(["jobs", "list", "--json", "--limit", "2"], stack.cli_env(user.key))).stdout
    )
    assert first["next_cursor"]
    second_run = await cli(
        ["jobs", "list", "--json", "--limit", "2", "--cursor", first["next_cursor"]],
        stack.cli_env(user.key),
    )
    second = json.loads(second_run.stdout)
    seen = [item["id"] for item in first["items"] + second["items"]]
    assert seen == list(reversed(ids))


async def test_jobs_show_json_fields(stack: Stack, make_user: MakeUser) -> None:
    user = await make_user()
    job = await submit(
        user.client, "prompt.generate", prompt_input("Shown"), metadata={"source": "cli-test"}
    )
    done = await wait_for_status(user.client, job["id"])
    run = await cli(["jobs", "show", job["id"], "--json"], stack.cli_env(user.key))
    assert run.returncode == 0, run.stderr
    shown = json.loads(run.stdout)
    assert set(shown) >= JOB_FIELDS
    assert shown == done

    readable = await cli(["jobs", "show", job["id"]], stack.cli_env(user.key))
    assert readable.returncode == 0, readable.stderr
    for text in (job["id"], "prompt.generate", "completed", "cli-test"):
        assert text in readable.stdout


async def test_jobs_show_unknown_id_exits_2(stack: Stack) -> None:
    missing = str(uuid.uuid4())
    run = await cli(["jobs", "show", missing], stack.cli_env())
    assert run.returncode == 2
    line = one_line(run.stderr)
    assert missing in line
    assert "not_found" in line
    assert run.stdout == ""
    assert "Traceback" not in run.stderr


async def test_another_users_job_is_not_found(stack: Stack, make_user: MakeUser) -> None:
    owner, other = await make_user(), await make_user()
    job = await submit(owner.client, "prompt.generate", prompt_input("Mine"))
    run = await cli(["jobs", "cancel", job["id"]], stack.cli_env(other.key))
    assert run.returncode == 2
    assert "not_found" in one_line(run.stderr)


async def test_cancel_of_a_finished_job_exits_2_with_the_message(
    stack: Stack, make_user: MakeUser
) -> None:
    user = await make_user()
    job = await submit(user.client, "prompt.generate", prompt_input("Done already"))
    await wait_for_status(user.client, job["id"], "completed")
    api_error = (await user.client.post(f"/v1/jobs/{job['id']}/cancel")).json()["error"]
    run = await cli(["jobs", "cancel", job["id"]], stack.cli_env(user.key))
    assert run.returncode == 2
    line = one_line(run.stderr)
    assert api_error["message"] in line
    assert api_error["code"] in line
    assert "Traceback" not in run.stderr


async def test_jobs_events_lists_every_step(stack: Stack, make_user: MakeUser) -> None:
    user = await make_user()
    job = await submit(user.client, "prompt.generate", prompt_input("Eventful"))
    await wait_for_status(user.client, job["id"])
    run = await cli(["jobs", "events", job["id"], "--json"], stack.cli_env(user.key))
    assert run.returncode == 0, run.stderr
    events = json.loads(run.stdout)["items"]
    assert [event["progress"] for event in events] == [0, 10, 30, 50, 70, 90, 100]
    assert events[-1]["status"] == "completed"
    assert all(event["job_id"] == job["id"] for event in events)

    table = await cli(["jobs", "events", job["id"]], stack.cli_env(user.key))
    assert "Checking tokens..." in table.stdout


async def test_watch_of_a_finished_job_reports_it(stack: Stack, make_user: MakeUser) -> None:
    user = await make_user(tokens=0)
    job = await submit(user.client, "prompt.generate", prompt_input("No tokens"))
    await wait_for_status(user.client, job["id"])
    run = await cli(["jobs", "watch", job["id"], "--json"], stack.cli_env(user.key))
    assert run.returncode == 1
    assert json.loads(run.stdout)["error"]["code"] == "insufficient_tokens"


async def test_unreachable_service_exits_3(stack: Stack) -> None:
    url = f"http://127.0.0.1:{free_tcp_port()}"
    env = {**stack.cli_env(), "JOBRELAY_API_URL": url}
    for args in (["jobs", "list"], ["submit", "prompt", "hello", "--watch"], ["me"]):
        run = await cli(args, env)
        assert run.returncode == 3, (args, run.stderr)
        line = one_line(run.stderr)
        assert line.startswith(f"error: cannot reach jobrelay at {url}")
        assert "Traceback" not in run.stderr
        assert run.stdout == ""


async def test_missing_api_key_is_a_usage_error(stack: Stack) -> None:
    env = {**stack.cli_env(), "JOBRELAY_API_KEY": ""}
    run = await cli(["jobs", "list"], env)
    assert run.returncode == 2
    assert "JOBRELAY_API_KEY" in one_line(run.stderr)


async def test_webhook_refused_by_the_api_exits_2(stack: Stack) -> None:
    run = await cli(
        ["submit", "prompt", "hooked", "--webhook", "http://169.254.169.254/latest"],
        stack.cli_env(),
    )
    assert run.returncode == 2
    assert "422" not in run.stdout
    assert one_line(run.stderr).startswith("error: ")


async def test_me_and_webhook_secret(stack: Stack, make_user: MakeUser) -> None:
    user = await make_user(tokens=1234)
    me = await cli(["me", "--json"], stack.cli_env(user.key))
    assert me.returncode == 0, me.stderr
    assert json.loads(me.stdout) == (await user.client.get("/v1/me")).json()
    assert json.loads(me.stdout)["tokens"] == 1234

    before = json.loads(
        (await cli(["me", "webhook-secret", "--json"], stack.cli_env(user.key))).stdout
    )
    rotated = await cli(["me", "webhook-secret", "--rotate"], stack.cli_env(user.key))
    assert rotated.returncode == 0, rotated.stderr
    new_secret = rotated.stdout.strip()
    assert new_secret.startswith("whsec_")
    assert new_secret != before["secret"]
    after = (await user.client.get("/v1/me/webhook-secret")).json()
    assert after["secret"] == new_secret


async def test_quiz_submit_and_questions(stack: Stack) -> None:
    run = await cli(
        [
            "submit",
            "quiz",
            "--size",
            "3",
            "--level",
            "Advanced",
            "--topic",
            "cloud computing",
            "--weak-skill",
            "gerunds",
            "--watch",
            "--json",
        ],
        stack.cli_env(),
    )
    assert run.returncode == 0, run.stderr
    job = json.loads(run.stdout)
    assert job["status"] == "completed"
    assert job["input"]["preferred_topics"] == ["cloud computing"]

    result = await cli(["jobs", "show", job["id"], "--questions", "--json"], stack.cli_env())
    assert result.returncode == 0, result.stderr
    questions = json.loads(result.stdout)["questions"]
    assert len(questions) == 3

    table = await cli(["jobs", "show", job["id"], "--questions"], stack.cli_env())
    assert table.returncode == 0, table.stderr
    assert questions[0]["sentence"][:20] in table.stdout


async def test_questions_of_a_prompt_job_is_a_usage_error(stack: Stack, client: Any) -> None:
    job = await submit(client, "prompt.generate", prompt_input("not a quiz"))
    run = await cli(["jobs", "show", job["id"], "--questions"], stack.cli_env())
    assert run.returncode == 2
    assert "quiz" in one_line(run.stderr)


async def test_cancel_retry_and_ctrl_c_on_a_queued_job(spawn_stack: Any) -> None:
    idle: Stack = await spawn_stack(workers=0)
    env = base_env(idle.cli_env())
    submitted = await cli(["submit", "prompt", "never picked up", "--json"], env)
    job_id = json.loads(submitted.stdout)["id"]

    watcher = await asyncio.create_subprocess_exec(
        *CLI,
        "jobs",
        "watch",
        job_id,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert watcher.stderr is not None
    hint = await asyncio.wait_for(watcher.stderr.readline(), timeout=30)
    assert f"watching job {job_id}" in hint.decode()
    await asyncio.sleep(0.5)
    watcher.send_signal(signal.SIGINT)
    _, err_bytes = await asyncio.wait_for(watcher.communicate(), timeout=15)
    err = err_bytes.decode()
    assert watcher.returncode == 0, err
    assert f"job {job_id} keeps running" in err
    assert "Traceback" not in err

    canceled = await cli(["jobs", "cancel", job_id, "--json"], env)
    assert canceled.returncode == 0, canceled.stderr
    assert json.loads(canceled.stdout)["status"] == "canceled"
    watched = await cli(["jobs", "watch", job_id], env)
    assert watched.returncode == 1

    retried = await cli(["jobs", "retry", job_id, "--json"], env)
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout)["status"] == "queued"
    again = await cli(["jobs", "retry", job_id], env)
    assert again.returncode == 2


async def test_usage_errors_exit_2(stack: Stack, tmp_path: Any) -> None:
    env = stack.cli_env()
    bad_size = await cli(["submit", "quiz", "--size", "101"], env)
    assert bad_size.returncode == 2
    bad_metadata = await cli(["submit", "prompt", "x", "--metadata", "novalue"], env)
    assert bad_metadata.returncode == 2
    assert "KEY=VALUE" in one_line(bad_metadata.stderr)
    missing = await cli(["submit", "ingest", str(tmp_path / "absent.csv")], env)
    assert missing.returncode == 2
    wrong_type = tmp_path / "records.txt"
    wrong_type.write_text("student_id\n1\n")
    assert (await cli(["submit", "ingest", str(wrong_type)], env)).returncode == 2
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"student_id": "a"}\nnot json\n')
    run = await cli(["submit", "ingest", str(broken)], env)
    assert run.returncode == 2
    assert "broken.jsonl:2" in one_line(run.stderr)
    empty = tmp_path / "empty.csv"
    empty.write_text("student_id,first_name\n")
    assert (await cli(["submit", "ingest", str(empty)], env)).returncode == 2


async def test_watch_follows_a_running_job_until_it_is_canceled(spawn_stack: Any) -> None:
    slow: Stack = await spawn_stack(prompt_step_delay="1.0")
    env = base_env(slow.cli_env())
    watcher = await asyncio.create_subprocess_exec(
        *CLI,
        "submit",
        "prompt",
        "slow enough to cancel",
        "--watch",
        "--json",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with httpx.AsyncClient(
        base_url=slow.api_url, headers={"Authorization": f"Bearer {slow.admin_key}"}
    ) as admin:
        job_id = await _first_job_id(admin)
        await wait_for_status(admin, job_id, "processing")
        canceled = await admin.post(f"/v1/jobs/{job_id}/cancel")
        assert canceled.status_code == 200, canceled.text
        out, err = await asyncio.wait_for(watcher.communicate(), timeout=30)
        assert watcher.returncode == 1, err.decode()
        final = json.loads(out)
        assert final["id"] == job_id
        assert final["status"] == "canceled"


async def _first_job_id(client: httpx.AsyncClient, timeout: float = 15) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        items = (await client.get("/v1/jobs")).json()["items"]
        if items:
            return str(items[0]["id"])
        await asyncio.sleep(0.05)
    raise AssertionError("the CLI submitted no job")


async def test_ingest_jsonl_with_watch_and_errors_file(
    stack: Stack, make_user: MakeUser, tmp_path: Path
) -> None:
    user = await make_user()
    prefix = new_prefix()
    source = tmp_path / "students.jsonl"
    bad = {3: student(prefix, 3, grade=0), 1100: student(prefix, 1100, email="nope")}
    lines = []
    for number in range(1, 1201):
        lines.append(json.dumps(bad.get(number, student(prefix, number))))
        if number == 10:
            lines.append("")  # blank lines are skipped but still count as file lines
    source.write_text("\n".join(lines) + "\n")
    errors_file = tmp_path / "rejected.jsonl"

    run = await cli(
        ["submit", "ingest", str(source), "--watch", "--errors", str(errors_file)],
        stack.cli_env(user.key),
        timeout=180,
    )
    assert run.returncode == 0, run.stderr
    assert "submitted 1200 records in 2 records.ingest jobs" in run.stdout
    assert "total 1200  processed 1198  failed 2" in run.stdout
    assert f"2 rejected rows written to {errors_file}" in run.stdout

    written = [json.loads(line) for line in errors_file.read_text().splitlines()]
    assert [(item["row"], item["line"]) for item in written] == [(3, 3), (1100, 1101)]
    assert [item["student_id"] for item in written] == [f"{prefix}-00003", f"{prefix}-01100"]
    assert written[0]["errors"][0].startswith("grade:")
    assert written[1]["errors"][0].startswith("email:")
    assert written[1]["record"] == bad[1100]


async def test_ingest_without_watch_lists_the_jobs(
    stack: Stack, make_user: MakeUser, tmp_path: Path
) -> None:
    user = await make_user()
    prefix = new_prefix()
    source = tmp_path / "students.jsonl"
    source.write_text("".join(json.dumps(student(prefix, n)) + "\n" for n in range(1, 1002)))
    run = await cli(["submit", "ingest", str(source), "--json"], stack.cli_env(user.key))
    assert run.returncode == 0, run.stderr
    submitted = json.loads(run.stdout)
    assert submitted["total_records"] == 1001
    assert [len(job["input"]["records"]) for job in submitted["jobs"]] == [1000, 1]
    for job in submitted["jobs"]:
        await wait_for_status(user.client, job["id"], "completed")


class NoStreamProxy:
    """Forwards to the API, but answers the event stream the way a buffering proxy might (plain
    JSON) and `/v1/me` with a 503, recording every path it was asked for."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.paths: list[str] = []
        self.app = Starlette(routes=[Route("/{path:path}", self._forward, methods=["GET", "POST"])])

    async def _forward(self, request: Request) -> Response:
        path = request.url.path
        self.paths.append(path)
        if path == "/v1/me":
            body = {"error": {"code": "not_ready", "message": "PostgreSQL is down", "details": []}}
            return JSONResponse(body, status_code=503)
        headers = {"Authorization": request.headers.get("authorization", "")}
        if path.endswith("/events"):
            headers["Accept"] = "application/json"
        for name in ("content-type", "idempotency-key"):
            if name in request.headers:
                headers[name] = request.headers[name]
        async with httpx.AsyncClient(base_url=self.upstream) as upstream:
            answer = await upstream.request(
                request.method,
                path,
                params=request.query_params,
                content=await request.body(),
                headers=headers,
            )
        return Response(
            answer.content,
            status_code=answer.status_code,
            media_type=answer.headers.get("content-type"),
        )


async def test_watch_falls_back_to_polling_and_503_is_unreachable(spawn_stack: Any) -> None:
    slow: Stack = await spawn_stack(prompt_step_delay="1.0")
    proxy = NoStreamProxy(slow.api_url)
    with serve(proxy.app) as proxy_url:
        env = {**base_env(slow.cli_env()), "JOBRELAY_API_URL": proxy_url}
        run = await cli(["submit", "prompt", "through a proxy", "--watch", "--json"], env)
        assert run.returncode == 0, run.stderr
        job = json.loads(run.stdout)
        assert job["status"] == "completed"
        assert f"/v1/jobs/{job['id']}/events" in proxy.paths
        assert proxy.paths.count(f"/v1/jobs/{job['id']}") >= 3

        down = await cli(["me"], env)
        assert down.returncode == 3
        assert "PostgreSQL is down" in one_line(down.stderr)
