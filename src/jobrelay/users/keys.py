"""API keys: random, shown once, stored as a SHA-256 digest."""

from __future__ import annotations

import base64
import hashlib
import secrets

KEY_PREFIX = "jr_"


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
