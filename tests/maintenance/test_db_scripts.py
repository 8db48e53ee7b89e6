"""`jobrelay db seed`, `jobrelay db backup FILE` and `jobrelay db restore FILE`."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from jobrelay.db.migrate import upgrade
from jobrelay.jobs.states import JobStatus
from jobrelay.kinds import KINDS
from jobrelay.users.keys import hash_api_key
from tests.maintenance.conftest import Scratch
from tests.reliability.servers import PrivatePostgres

STATUSES = {status.value for status in JobStatus}


async def test_seed_makes_users_with_keys_and_jobs_in_every_kind_and_status(
    scratch: Scratch,
) -> None:
    first = scratch.cli_json("db", "seed")
    assert first["batch"] == 1
    names = [u["name"] for u in first["users"]]
    assert names == ["demo-admin", "alice", "bob", "carol"]
    hashes = {r["key_hash"] for r in await scratch.fetch("SELECT key_hash FROM api_keys")}
    assert {hash_api_key(u["api_key"]) for u in first["users"]} <= hashes
    spread = await scratch.fetch("SELECT DISTINCT kind, status FROM jobs")
    assert {(r["kind"], r["status"]) for r in spread} == set(itertools.product(KINDS, STATUSES))
    without_events = await scratch.fetch(
        "SELECT id FROM jobs j WHERE NOT EXISTS (SELECT 1 FROM job_events e WHERE e.job_id = j.id)"
    )
    assert without_events == []
    out_of_order = await scratch.fetch(
        "SELECT a.job_id FROM job_events a JOIN job_events b "
        "ON a.job_id = b.job_id AND a.id < b.id AND a.at > b.at"
    )
    assert out_of_order == []
    last_status = await scratch.fetch(
        "SELECT j.id FROM jobs j WHERE j.status <> (SELECT e.status FROM job_events e "
        "WHERE e.job_id = j.id AND e.type = 'status' ORDER BY e.id DESC LIMIT 1)"
    )
    assert last_status == []
    quizzes = await scratch.fetch(
        "SELECT j.id, (j.result->>'questions_created')::int AS created, "
        "(SELECT count(*) FROM questions q WHERE q.job_id = j.id) AS stored "
        "FROM jobs j WHERE j.kind = 'quiz.generate' AND j.status = 'completed'"
    )
    assert quizzes and all(q["created"] == q["stored"] > 0 for q in quizzes)
    failed = await scratch.fetch("SELECT error FROM jobs WHERE status = 'failed'")
    assert all(row["error"] for row in failed)

    second = scratch.cli_json("db", "seed")
    assert second["batch"] == 2
    assert [u["name"] for u in second["users"]] == [f"{n}-2" for n in names]
    total = await scratch.fetch("SELECT count(*) AS n FROM jobs")
    assert total[0]["n"] == 2 * sum(first["jobs"].values())


async def test_seed_prints_the_keys(scratch: Scratch) -> None:
    done = scratch.cli("db", "seed")
    assert done.returncode == 0, done.stderr
    keys = [line.split(": ", 1)[1] for line in done.stdout.splitlines() if ": jr_" in line]
    assert len(keys) == 4
    hashes = {r["key_hash"] for r in await scratch.fetch("SELECT key_hash FROM api_keys")}
    assert {hash_api_key(k) for k in keys} == hashes


async def test_backup_and_restore_round_trip(scratch: Scratch, tmp_path: Path) -> None:
    scratch.cli_json("db", "seed")
    before = await scratch.fetch("SELECT id, status, result::text FROM jobs ORDER BY id")
    archive = tmp_path / "jobrelay.dump"
    done = scratch.cli("db", "backup", str(archive))
    assert done.returncode == 0, done.stderr
    assert archive.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format

    await scratch.execute("DELETE FROM jobs")
    await scratch.execute(
        "INSERT INTO daily_stats (day, kind, status, count) "
        "VALUES ('2020-01-01', 'x', 'completed', 1)"
    )
    done = scratch.cli("db", "restore", str(archive))
    assert done.returncode == 0, done.stderr
    after = await scratch.fetch("SELECT id, status, result::text FROM jobs ORDER BY id")
    assert after == before
    assert await scratch.fetch("SELECT * FROM daily_stats") == []
    version = await scratch.fetch("SELECT version_num FROM alembic_version")
    assert len(version) == 1


def test_backup_without_matching_tools_is_a_usage_error(scratch: Scratch, tmp_path: Path) -> None:
    done = scratch.cli("db", "backup", str(tmp_path / "x.dump"), JOBRELAY_PG_BIN_DIR=str(tmp_path))
    assert done.returncode == 2
    message = done.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "pg_dump and pg_restore for PostgreSQL" in message and "not found" in message
    assert not (tmp_path / "x.dump").exists()


def test_restore_of_a_broken_archive_changes_nothing(scratch: Scratch, tmp_path: Path) -> None:
    broken = tmp_path / "broken.dump"
    broken.write_bytes(b"not an archive")
    done = scratch.cli("db", "restore", str(broken))
    assert done.returncode == 1
    assert "pg_restore" in done.stderr
    assert scratch.cli("db", "restore", str(tmp_path / "missing.dump")).returncode == 2


def test_backup_reports_unreachable_database(scratch: Scratch, tmp_path: Path) -> None:
    done = scratch.cli(
        "db",
        "backup",
        str(tmp_path / "x.dump"),
        JOBRELAY_DATABASE_URL="postgresql://postgres@127.0.0.1:1/jobrelay",
    )
    assert done.returncode == 3
    assert len(done.stderr.strip().splitlines()) == 1


async def test_backup_of_the_embedded_server_uses_its_own_tools(tmp_path: Path) -> None:
    """The embedded PostgreSQL is a newer major version than the system client tools here; the
    backup must pick its bundled pg_dump, not fail with a version mismatch."""
    server = PrivatePostgres()
    await asyncio.to_thread(server.start)
    try:
        await asyncio.to_thread(upgrade, server.url)
        embedded = Scratch(
            {
                "JOBRELAY_DATABASE_URL": server.url.replace("+asyncpg", ""),
                "JOBRELAY_REDIS_URL": "redis://127.0.0.1:1/0",
            }
        )
        await embedded.execute(
            "INSERT INTO users (name, role, tokens, webhook_secret) VALUES ('x', 'user', 0, 'w')"
        )
        archive = tmp_path / "embedded.dump"
        done = embedded.cli("db", "backup", str(archive))
        assert done.returncode == 0, done.stderr
        await embedded.execute("DELETE FROM users")
        done = embedded.cli("db", "restore", str(archive))
        assert done.returncode == 0, done.stderr
        assert len(await embedded.fetch("SELECT 1 FROM users")) == 1
    finally:
        await asyncio.to_thread(server.stop)
