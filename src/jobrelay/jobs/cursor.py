"""Opaque keyset cursors: (created_at, id) of the last item of a page."""

from __future__ import annotations

import base64
import datetime as dt
import uuid

from jobrelay.errors import Unprocessable


def encode_cursor(created_at: dt.datetime, job_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{job_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, job_id = raw.split("|", 1)
        parsed = dt.datetime.fromisoformat(created)
        if parsed.tzinfo is None:
            raise ValueError("naive timestamp")
        return parsed, uuid.UUID(job_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unprocessable(
            "The cursor is not one this API gave out.",
            code="invalid_cursor",
            details=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}],
        ) from exc
