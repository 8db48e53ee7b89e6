"""First-run setup shared by `jobrelay dev` and `jobrelay db seed`: an admin and its key."""

from __future__ import annotations

import asyncio
from pathlib import Path

from jobrelay.config import Settings
from jobrelay.services import Services
from jobrelay.users import service as users_service
from jobrelay.users.schemas import UserCreate


async def _key_works(services: Services, key: str) -> bool:
    try:
        caller = await users_service.authenticate(services, key)
    except Exception:
        return False
    return caller.is_admin


async def _ensure(settings: Settings, key_file: Path) -> str:
    services = await Services.open(settings, pool_size=2)
    try:
        if key_file.exists():
            key = key_file.read_text().strip()
            if key and await _key_works(services, key):
                return key
        _, key = await users_service.create_user(
            services, UserCreate(name="admin", role="admin", tokens=1_000_000)
        )
    finally:
        await services.close()
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    return key


def ensure_admin_key(settings: Settings, key_file: Path) -> str:
    """The admin key stored in `key_file`, creating the admin user the first time."""
    return asyncio.run(_ensure(settings, key_file))
