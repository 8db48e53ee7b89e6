"""Standard Webhooks signing and verification, for every signed message jobrelay sends or receives.

One module for all three directions (requests to the generator, the generator's callbacks,
outgoing user webhooks) so they cannot drift apart. The cryptography is PyPI `standardwebhooks`;
this module adds what the library leaves out: typed failure reasons, several secrets for
rotation on the receiving side, tolerance of malformed headers, and secret generation.

Headers: `webhook-id`, `webhook-timestamp` (Unix seconds), `webhook-signature`
(`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, several separated by spaces).
Secrets look like `whsec_<base64>`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import secrets as secrets_module
from collections.abc import Iterable, Mapping

from standardwebhooks import Webhook, WebhookVerificationError

__all__ = [
    "SECRET_PREFIX",
    "TOLERANCE",
    "WEBHOOK_ID",
    "WEBHOOK_SIGNATURE",
    "WEBHOOK_TIMESTAMP",
    "SignatureError",
    "SignatureFailure",
    "new_message_id",
    "new_secret",
    "sign",
    "sign_now",
    "validate_secret",
    "verify",
]

WEBHOOK_ID = "webhook-id"
WEBHOOK_TIMESTAMP = "webhook-timestamp"
WEBHOOK_SIGNATURE = "webhook-signature"
SECRET_PREFIX = "whsec_"
TOLERANCE = dt.timedelta(minutes=5)
"""How far a timestamp may be from our clock, either way; the library enforces the same."""


class SignatureFailure(enum.StrEnum):
    """Why a signed message was refused; callers record it and map it to a response."""

    # no usable secret configured on the receiving side
    NOT_CONFIGURED = "not_configured"
    # webhook-id, webhook-timestamp or webhook-signature absent or empty
    MISSING_HEADERS = "missing_headers"
    # a header is present but not in the standard's form (timestamp not a number, ...)
    INVALID_HEADERS = "invalid_headers"
    # no signature matches any of our secrets
    BAD_SIGNATURE = "bad_signature"
    # the timestamp is more than the tolerance in the past
    TIMESTAMP_TOO_OLD = "timestamp_too_old"
    # the timestamp is more than the tolerance in the future
    TIMESTAMP_TOO_NEW = "timestamp_too_new"


class SignatureError(Exception):
    """A message failed verification; `reason` says which check refused it."""

    def __init__(self, reason: SignatureFailure, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def new_secret() -> str:
    """A fresh signing secret in the `whsec_<base64>` form (32 random bytes)."""
    return SECRET_PREFIX + base64.b64encode(secrets_module.token_bytes(32)).decode("ascii")


def new_message_id() -> str:
    """A unique `webhook-id` for a new message; retries of one message must reuse it."""
    return "msg_" + secrets_module.token_urlsafe(18)


def validate_secret(secret: str) -> str:
    """Return `secret` if it is a usable `whsec_<base64>` key, else raise `ValueError`."""
    _webhook(secret)
    return secret


def sign(secret: str, msg_id: str, timestamp: dt.datetime | int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for `body`, sent as `msg_id` at `timestamp`."""
    when = _as_utc(timestamp)
    signature = _webhook(secret).sign(msg_id=msg_id, timestamp=when, data=_text(body))
    return {
        WEBHOOK_ID: msg_id,
        WEBHOOK_TIMESTAMP: str(int(when.timestamp())),
        WEBHOOK_SIGNATURE: signature,
    }


def sign_now(secret: str, body: bytes, *, msg_id: str | None = None) -> dict[str, str]:
    """Headers for sending `body` now; pass the first attempt's `msg_id` when retrying."""
    return sign(secret, msg_id or new_message_id(), dt.datetime.now(dt.UTC), body)


def verify(secrets: Iterable[str], headers: Mapping[str, str], body: bytes) -> str:
    """Check `body` against its headers with any of `secrets`; return the message id.

    Several secrets let the receiver accept both keys while one is rotated; several
    signatures in the header let the sender sign with both. Comparison is constant-time
    (inside the library). Raises `SignatureError` with the first check that failed.
    """
    keys = [_webhook(key) for key in secrets if key and _usable_secret(key)]
    if not keys:
        raise SignatureError(
            SignatureFailure.NOT_CONFIGURED, "No signing secret is configured to verify this."
        )
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get(WEBHOOK_ID, "").strip()
    raw_timestamp = lowered.get(WEBHOOK_TIMESTAMP, "").strip()
    signatures = lowered.get(WEBHOOK_SIGNATURE, "").strip()
    missing = [
        name
        for name, value in (
            (WEBHOOK_ID, msg_id),
            (WEBHOOK_TIMESTAMP, raw_timestamp),
            (WEBHOOK_SIGNATURE, signatures),
        )
        if not value
    ]
    if missing:
        raise SignatureError(
            SignatureFailure.MISSING_HEADERS, "Missing signature headers: " + ", ".join(missing)
        )
    _check_timestamp(raw_timestamp)
    usable = " ".join(
        part for part in signatures.split() if part.count(",") == 1 and _is_base64(part)
    )
    if not usable:
        raise SignatureError(
            SignatureFailure.INVALID_HEADERS,
            "webhook-signature holds no signature of the form v1,<base64>.",
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SignatureError(
            SignatureFailure.BAD_SIGNATURE, "The body is not UTF-8, so it cannot be verified."
        ) from exc
    message_headers = {
        WEBHOOK_ID: msg_id,
        WEBHOOK_TIMESTAMP: raw_timestamp,
        WEBHOOK_SIGNATURE: usable,
    }
    for key in keys:
        try:
            key.verify(text, message_headers, json_parse=False)
        except WebhookVerificationError as exc:
            _raise_if_timestamp(str(exc))
            continue
        return msg_id
    raise SignatureError(
        SignatureFailure.BAD_SIGNATURE, "No signature matches the configured secret."
    )


def _check_timestamp(raw: str) -> None:
    try:
        when = dt.datetime.fromtimestamp(float(raw), tz=dt.UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise SignatureError(
            SignatureFailure.INVALID_HEADERS, "webhook-timestamp is not a Unix time in seconds."
        ) from exc
    now = dt.datetime.now(dt.UTC)
    if when < now - TOLERANCE:
        raise SignatureError(
            SignatureFailure.TIMESTAMP_TOO_OLD,
            "webhook-timestamp is more than 5 minutes old; check the sender's clock or resend.",
        )
    if when > now + TOLERANCE:
        raise SignatureError(
            SignatureFailure.TIMESTAMP_TOO_NEW,
            "webhook-timestamp is more than 5 minutes in the future; check the sender's clock.",
        )


def _raise_if_timestamp(library_message: str) -> None:
    """Map the library's own timestamp check (it runs again, a moment later) to our reasons."""
    lowered = library_message.lower()
    if "too old" in lowered:
        raise SignatureError(
            SignatureFailure.TIMESTAMP_TOO_OLD, "webhook-timestamp is more than 5 minutes old."
        )
    if "too new" in lowered:
        raise SignatureError(
            SignatureFailure.TIMESTAMP_TOO_NEW,
            "webhook-timestamp is more than 5 minutes in the future.",
        )


def _is_base64(versioned: str) -> bool:
    _, _, encoded = versioned.partition(",")
    try:
        base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _usable_secret(secret: str) -> bool:
    try:
        _webhook(secret)
    except ValueError:
        return False
    return True


def _webhook(secret: str) -> Webhook:
    try:
        return Webhook(secret)
    except Exception as exc:
        raise ValueError(
            "A signing secret must look like whsec_<base64>; generate one with new_secret()."
        ) from exc


def _as_utc(timestamp: dt.datetime | int) -> dt.datetime:
    if isinstance(timestamp, dt.datetime):
        if timestamp.tzinfo is None:
            return timestamp.replace(tzinfo=dt.UTC)
        return timestamp.astimezone(dt.UTC)
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("Only UTF-8 bodies can be signed.") from exc
