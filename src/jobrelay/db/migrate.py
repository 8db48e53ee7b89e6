"""Run Alembic migrations from code (`jobrelay db upgrade`, `jobrelay dev`, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

import jobrelay


def migrations_dir() -> Path:
    """The repository's `migrations/`, or the copy packaged into the wheel."""
    package = Path(jobrelay.__file__).resolve().parent
    for candidate in (package.parents[1] / "migrations", package / "_migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise RuntimeError("the migrations directory is missing from this installation")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate to `revision`; safe to run from several processes at once."""
    command.upgrade(alembic_config(database_url), revision)
