"""Who may call back: a Standard Webhooks signature, or the original worker's shared token.

A signature, when headers for one are present and a secret is configured, must verify: a bad
signature is refused even if a valid token rides along. Without signature headers, the
`X-AI-Worker-Token` header is compared in constant time, unless that scheme is switched off
(`JOBRELAY_AI_WORKER_TOKEN_ENABLED=false`). `JOBRELAY_GENERATOR_SECRET` may hold several
secrets separated by spaces while one is being rotated; the first one signs.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from jobrelay import signing
from jobrelay.config import Settings
from jobrelay.errors import Unauthorized

__all__ = ["TOKEN_HEADER", "Authenticated", "authenticate"]

TOKEN_HEADER = "x-ai-worker-token"
_SIGNATURE_HEADERS = (signing.WEBHOOK_ID, signing.WEBHOOK_TIMESTAMP, signing.WEBHOOK_SIGNATURE)


@dataclass(frozen=True)
class Authenticated:
    scheme: str  # "signature" or "token"
    webhook_id: str | None  # the message id of a signed callback: the key against replays


def authenticate(
    settings: Settings,
    headers: Mapping[str, str],
    body: bytes,
    *,
    secrets: list[str] | None = None,
    token: str | None = None,
) -> Authenticated:
    """The accepted scheme, or `Unauthorized` with a reason a generator's operator can act on.
    `secrets` and `token` are a delegated kind's own (default: the generator's settings)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    if secrets is None:
        secrets = settings.generator_secret.split()
    if secrets and any(lowered.get(name) for name in _SIGNATURE_HEADERS):
        try:
            webhook_id = signing.verify(secrets, lowered, body)
        except signing.SignatureError as exc:
            raise _refused(exc.message, "invalid_signature", exc.reason.value) from exc
        return Authenticated("signature", webhook_id)
    sent = lowered.get(TOKEN_HEADER)
    if sent is not None:
        if not settings.ai_worker_token_enabled:
            raise _refused(
                "X-AI-Worker-Token is switched off here; sign callbacks with Standard Webhooks.",
                "token_auth_disabled",
                "token_disabled",
            )
        expected = settings.ai_worker_token if token is None else token
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise _refused("X-AI-Worker-Token is not valid.", "invalid_token", "bad_token")
        return Authenticated("token", None)
    raise _refused(
        "Callbacks must be signed (webhook-id, webhook-timestamp, webhook-signature)"
        + (" or carry X-AI-Worker-Token." if settings.ai_worker_token_enabled else "."),
        "missing_credentials",
        signing.SignatureFailure.MISSING_HEADERS.value
        if secrets
        else signing.SignatureFailure.NOT_CONFIGURED.value,
    )


def _refused(message: str, code: str, reason: str) -> Unauthorized:
    return Unauthorized(message, code=code, details=[{"reason": reason}], headers={})
