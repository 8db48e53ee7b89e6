"""Users and authentication. A short in-process cache keeps key lookups off the hot path."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from jobrelay.db import users as users_db
from jobrelay.errors import Forbidden, NotFound, Unauthorized
from jobrelay.services import Services
from jobrelay.tx import transaction
from jobrelay.users.keys import hash_api_key, new_api_key, new_webhook_secret
from jobrelay.users.schemas import MeOut, UserCreate, UserOut

_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Caller:
    id: int
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


_key_cache: dict[str, tuple[float, Caller]] = {}


def _user_out(row: object) -> UserOut:
    return UserOut.model_validate(row, from_attributes=True)


async def create_user(services: Services, body: UserCreate) -> tuple[UserOut, str]:
    """Create a user with its first API key; the key is returned once and only hashed at rest."""
    key = new_api_key()
    async with transaction(services) as tx:
        row = await users_db.insert_user(
            tx.conn,
            name=body.name,
            role=body.role,
            tokens=body.tokens,
            subscription_expires_at=body.subscription_expires_at,
            webhook_secret=new_webhook_secret(),
        )
        await users_db.insert_api_key(
            tx.conn, user_id=row.id, key_hash=hash_api_key(key), prefix=key[:10]
        )
    return _user_out(row), key


async def list_users(
    services: Services, *, limit: int, after_id: int | None
) -> tuple[list[UserOut], int | None]:
    async with services.engine.connect() as conn:
        rows = await users_db.list_users(conn, limit=limit + 1, after_id=after_id)
    items = [_user_out(r) for r in rows[:limit]]
    return items, (items[-1].id if len(rows) > limit else None)


async def authenticate(services: Services, api_key: str | None) -> Caller:
    if not api_key:
        raise Unauthorized("Send an API key as 'Authorization: Bearer <key>'.")
    digest = hash_api_key(api_key)
    cached = _key_cache.get(digest)
    now = time.monotonic()
    if cached is not None and cached[0] > now:
        return cached[1]
    async with services.reads.connect() as conn:
        row = await users_db.get_user_by_key_hash(conn, digest)
    if row is None:
        _key_cache.pop(digest, None)
        raise Unauthorized("The API key is not valid.")
    caller = Caller(id=row.id, name=row.name, role=row.role)
    if len(_key_cache) > 10_000:
        _key_cache.clear()
    _key_cache[digest] = (now + _CACHE_SECONDS, caller)
    return caller


def require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise Forbidden("Only an admin may do this.", code="admin_only")


async def get_me(services: Services, caller: Caller) -> MeOut:
    async with services.engine.connect() as conn:
        row = await users_db.get_user(conn, caller.id)
    if row is None:
        raise NotFound("The user no longer exists.", code="user_not_found")
    return MeOut.model_validate(row, from_attributes=True)


async def user_exists(services: Services, user_id: int) -> bool:
    async with services.engine.connect() as conn:
        return await users_db.get_user(conn, user_id) is not None


async def get_webhook_secret(services: Services, caller: Caller) -> str:
    async with services.engine.connect() as conn:
        row = await users_db.get_user(conn, caller.id)
    if row is None:
        raise NotFound("The user no longer exists.", code="user_not_found")
    return str(row.webhook_secret)


async def rotate_webhook_secret(services: Services, caller: Caller) -> str:
    secret = new_webhook_secret()
    async with transaction(services) as tx:
        await users_db.set_webhook_secret(tx.conn, user_id=caller.id, secret=secret)
    return secret


def subscription_active(expires_at: dt.datetime | None, now: dt.datetime) -> bool:
    return expires_at is None or expires_at > now
