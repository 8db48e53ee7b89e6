"""Server-side commands as a newcomer runs them: `jobrelay dev`, `db upgrade`, `users`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx

from jobrelay.embedded import free_tcp_port
from tests.conftest import Stack
from tests.support.processes import CLI, base_env, run_cli


def _start_dev(data_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    port = free_tcp_port()
    process = subprocess.Popen(
        [
            *CLI,
            "dev",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--generator-port",
            str(free_tcp_port()),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    return process, port


def _wait_ready(process: subprocess.Popen[str], port: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("jobrelay dev did not become ready")


def _stop(process: subprocess.Popen[str]) -> str:
    os.killpg(process.pid, signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    return out


def _prompt_roundtrip(port: int, key: str) -> str:
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}
    ) as http:
        job = http.post(
            "/v1/jobs",
            json={"kind": "prompt.generate", "input": {"manual_prompt": "hello"}},
            headers={"Prefer": "wait=30"},
        ).json()
        assert job["status"] == "completed", job
        return str(job["id"])


def test_dev_on_the_embedded_servers_survives_a_restart(tmp_path: Path) -> None:
    env = base_env({"JOBRELAY_OFFLINE_LLM_DELAY": "0"})
    data_dir = tmp_path / "data"
    process, port = _start_dev(data_dir, env)
    try:
        _wait_ready(process, port)
        key = (data_dir / "admin-api-key").read_text().strip()
        job_id = _prompt_roundtrip(port, key)
    finally:
        out = _stop(process)
    assert process.returncode == 0, out
    assert f"http://127.0.0.1:{port}/docs" in out
    assert key in out
    assert "Traceback" not in out
    lines = out.splitlines()
    assert f"Try: export JOBRELAY_API_URL=http://127.0.0.1:{port} JOBRELAY_API_KEY={key}" in lines
    assert any(line.rstrip().endswith('10 year old" --watch') for line in lines), out
    process, port = _start_dev(data_dir, env)
    try:
        _wait_ready(process, port)
        assert (data_dir / "admin-api-key").read_text().strip() == key
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}
        ) as http:
            assert http.get(f"/v1/jobs/{job_id}").json()["status"] == "completed"
    finally:
        out = _stop(process)
    assert process.returncode == 0, out


def test_dev_uses_configured_servers(tmp_path: Path, stack: Stack) -> None:
    env = base_env({**stack.env, "JOBRELAY_QUEUE_NAME": "jobrelay:dev-test"})
    env.pop("JOBRELAY_GENERATOR_URL", None)
    process, port = _start_dev(tmp_path, env)
    try:
        _wait_ready(process, port)
        key = (tmp_path / "admin-api-key").read_text().strip()
        _prompt_roundtrip(port, key)
    finally:
        out = _stop(process)
    assert process.returncode == 0, out
    assert stack.env["JOBRELAY_DATABASE_URL"].rsplit("/", 1)[1] in out
    assert not (tmp_path / "postgres").exists()


def test_db_upgrade_and_users(stack: Stack) -> None:
    env = base_env(stack.env)
    upgraded = run_cli(["db", "upgrade"], env)
    assert upgraded.returncode == 0, upgraded.stderr
    created = run_cli(["users", "create", "carol", "--tokens", "42", "--json"], env)
    assert created.returncode == 0, created.stderr
    body = json.loads(created.stdout)
    assert body["user"]["name"] == "carol" and body["user"]["tokens"] == 42
    assert re.fullmatch(r"jr_[A-Za-z0-9_-]{20,}", body["api_key"])
    me = httpx.get(f"{stack.api_url}/v1/me", headers={"Authorization": f"Bearer {body['api_key']}"})
    assert me.json()["name"] == "carol" and me.json()["role"] == "user"
    admin = run_cli(["users", "create", "dave", "--admin"], env)
    assert admin.returncode == 0 and "API key (shown once)" in admin.stdout
    listed = run_cli(["users", "list", "--json"], env)
    names = {u["name"]: u["role"] for u in json.loads(listed.stdout)}
    assert names["carol"] == "user" and names["dave"] == "admin"
    assert "jr_" not in listed.stdout


def test_server_commands_need_configuration() -> None:
    result = run_cli(["worker"], base_env({}))
    assert result.returncode == 2
    assert "JOBRELAY_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_dev_refuses_a_data_directory_of_an_older_postgresql_in_one_message(
    tmp_path: Path,
) -> None:
    pgdata = tmp_path / "postgres"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("16\n")
    (pgdata / "base").mkdir()
    (pgdata / "base" / "kept").write_text("rows")
    result = run_cli(["dev", "--data-dir", str(tmp_path)], base_env({}))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "PostgreSQL 16" in result.stderr and "jobrelay db backup" in result.stderr
    assert result.stderr.startswith("error: ")
    assert (pgdata / "base" / "kept").read_text() == "rows"
    assert sorted(p.name for p in pgdata.iterdir()) == ["PG_VERSION", "base"]


def _cli_in(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a newcomer runs it after `jobrelay dev`: no JOBRELAY_* set, in the directory
    that holds `.jobrelay`."""
    return subprocess.run(
        [*CLI, *args], env=base_env({}), cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_database_commands_use_the_embedded_database_of_dev(tmp_path: Path) -> None:
    data_dir = tmp_path / ".jobrelay"
    process, port = _start_dev(data_dir, base_env({"JOBRELAY_OFFLINE_LLM_DELAY": "0"}))
    try:
        _wait_ready(process, port)
        created = _cli_in(tmp_path, "users", "create", "carol", "--json")
        assert created.returncode == 0, created.stderr
        key = json.loads(created.stdout)["api_key"]
        me = httpx.get(f"http://127.0.0.1:{port}/v1/me", headers={"Authorization": f"Bearer {key}"})
        assert me.json()["name"] == "carol", "the CLI wrote into the database dev serves"
        upgraded = _cli_in(tmp_path, "db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        backed_up = _cli_in(tmp_path, "db", "backup", str(tmp_path / "dev.dump"))
        assert backed_up.returncode == 0, backed_up.stderr
        admin_key = (data_dir / "admin-api-key").read_text().strip()
        assert _prompt_roundtrip(port, admin_key), "dev keeps serving after the commands"
    finally:
        out = _stop(process)
    assert process.returncode == 0, out

    # With dev stopped, each command starts the embedded servers for itself, then stops them.
    seeded = _cli_in(tmp_path, "db", "seed", "--json")
    assert seeded.returncode == 0, seeded.stderr
    restored = _cli_in(tmp_path, "db", "restore", str(tmp_path / "dev.dump"))
    assert restored.returncode == 0, restored.stderr
    listed = _cli_in(tmp_path, "users", "list", "--json", "--data-dir", str(data_dir))
    assert listed.returncode == 0, listed.stderr
    names = {user["name"] for user in json.loads(listed.stdout)}
    assert names == {"admin", "carol"}, "the restore replaced the seeded users"
    assert not (data_dir / "postgres" / "postmaster.pid").exists(), "no server left running"


def test_database_commands_without_a_database_say_what_to_do(tmp_path: Path) -> None:
    result = _cli_in(tmp_path, "users", "list")
    assert result.returncode == 2
    assert "JOBRELAY_DATABASE_URL" in result.stderr and "jobrelay dev" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / ".jobrelay").exists()
