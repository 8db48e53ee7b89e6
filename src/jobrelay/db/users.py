"""SQL for users and API keys."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from jobrelay.db.models import api_keys_table as keys
from jobrelay.db.models import users_table as users

UserRow = Row[*tuple[Any, ...]]


async def insert_user(
    conn: AsyncConnection,
    *,
    name: str,
    role: str,
    tokens: int,
    subscription_expires_at: dt.datetime | None,
    webhook_secret: str,
) -> UserRow:
    result = await conn.execute(
        insert(users)
        .values(
            name=name,
            role=role,
            tokens=tokens,
            subscription_expires_at=subscription_expires_at,
            webhook_secret=webhook_secret,
        )
        .returning(*users.c)
    )
    return result.one()


async def insert_api_key(
    conn: AsyncConnection, *, user_id: int, key_hash: str, prefix: str
) -> None:
    await conn.execute(insert(keys).values(user_id=user_id, key_hash=key_hash, prefix=prefix))


async def get_user_by_key_hash(conn: AsyncConnection, key_hash: str) -> UserRow | None:
    result = await conn.execute(
        select(*users.c)
        .join(keys, keys.c.user_id == users.c.id)
        .where(keys.c.key_hash == key_hash, keys.c.revoked_at.is_(None))
    )
    return result.first()


async def get_user(conn: AsyncConnection, user_id: int) -> UserRow | None:
    result = await conn.execute(select(*users.c).where(users.c.id == user_id))
    return result.first()


async def list_users(
    conn: AsyncConnection, *, limit: int, after_id: int | None
) -> Sequence[UserRow]:
    stmt = select(*users.c).order_by(users.c.id).limit(limit)
    if after_id is not None:
        stmt = stmt.where(users.c.id > after_id)
    return (await conn.execute(stmt)).all()


async def count_users(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(users))).scalar_one())


async def set_webhook_secret(conn: AsyncConnection, *, user_id: int, secret: str) -> None:
    await conn.execute(update(users).where(users.c.id == user_id).values(webhook_secret=secret))


async def charge_tokens(conn: AsyncConnection, *, user_id: int, amount: int) -> int | None:
    """Take `amount` tokens if the balance covers it; the new balance, or None if it does not."""
    result = await conn.execute(
        update(users)
        .where(users.c.id == user_id, users.c.tokens >= amount)
        .values(tokens=users.c.tokens - amount)
        .returning(users.c.tokens)
    )
    balance = result.scalar_one_or_none()
    return None if balance is None else int(balance)
