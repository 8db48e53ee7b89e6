"""Standard Webhooks signing: every refusal has its own reason, rotation works both ways."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import time

import pytest

from jobrelay import signing
from jobrelay.signing import SignatureError, SignatureFailure

BODY = b'{"status":"processing","progress":40,"message":"Generating..."}'


def _reason(secrets: list[str], headers: dict[str, str], body: bytes = BODY) -> SignatureFailure:
    with pytest.raises(SignatureError) as caught:
        signing.verify(secrets, headers, body)
    return caught.value.reason


def test_signature_is_the_standard_hmac() -> None:
    secret = signing.new_secret()
    headers = signing.sign(secret, "msg_1", 1_700_000_000, BODY)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = hmac.new(key, b"msg_1.1700000000." + BODY, hashlib.sha256).digest()
    assert headers == {
        "webhook-id": "msg_1",
        "webhook-timestamp": "1700000000",
        "webhook-signature": "v1," + base64.b64encode(expected).decode(),
    }


def test_new_secrets_are_whsec_base64_and_distinct() -> None:
    first, second = signing.new_secret(), signing.new_secret()
    assert first.startswith("whsec_") and first != second
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32
    assert signing.validate_secret(first) == first


def test_verify_returns_the_message_id() -> None:
    secret = signing.new_secret()
    headers = signing.sign_now(secret, BODY, msg_id="msg_abc")
    assert signing.verify([secret], headers, BODY) == "msg_abc"


def test_header_names_are_case_insensitive() -> None:
    secret = signing.new_secret()
    headers = {k.upper(): v for k, v in signing.sign_now(secret, BODY).items()}
    assert signing.verify([secret], headers, BODY).startswith("msg_")


def test_wrong_secret_is_a_bad_signature() -> None:
    headers = signing.sign_now(signing.new_secret(), BODY)
    assert _reason([signing.new_secret()], headers) is SignatureFailure.BAD_SIGNATURE


def test_one_changed_byte_is_a_bad_signature() -> None:
    secret = signing.new_secret()
    headers = signing.sign_now(secret, BODY)
    tampered = BODY.replace(b"40", b"41")
    assert _reason([secret], headers, tampered) is SignatureFailure.BAD_SIGNATURE


@pytest.mark.parametrize("dropped", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_each_missing_header_is_reported(dropped: str) -> None:
    secret = signing.new_secret()
    headers = signing.sign_now(secret, BODY)
    del headers[dropped]
    with pytest.raises(SignatureError) as caught:
        signing.verify([secret], headers, BODY)
    assert caught.value.reason is SignatureFailure.MISSING_HEADERS
    assert dropped in caught.value.message


@pytest.mark.parametrize(
    ("offset", "reason"),
    [(-360, SignatureFailure.TIMESTAMP_TOO_OLD), (360, SignatureFailure.TIMESTAMP_TOO_NEW)],
)
def test_timestamps_six_minutes_off_are_refused(offset: int, reason: SignatureFailure) -> None:
    secret = signing.new_secret()
    headers = signing.sign(secret, "msg_t", int(time.time()) + offset, BODY)
    assert _reason([secret], headers) is reason


@pytest.mark.parametrize("offset", [-240, 240])
def test_timestamps_four_minutes_off_are_accepted(offset: int) -> None:
    secret = signing.new_secret()
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset)
    headers = signing.sign(secret, "msg_t", when, BODY)
    assert signing.verify([secret], headers, BODY) == "msg_t"


def test_two_signatures_during_rotation() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    signed_old = signing.sign(old, "msg_r", int(time.time()), BODY)
    signed_new = signing.sign(new, "msg_r", int(time.time()), BODY)
    both = {
        **signed_old,
        "webhook-signature": f"{signed_new['webhook-signature']} {signed_old['webhook-signature']}",
    }
    assert signing.verify([old], both, BODY) == "msg_r"
    assert signing.verify([new], both, BODY) == "msg_r"
    assert _reason([signing.new_secret()], both) is SignatureFailure.BAD_SIGNATURE


def test_receiver_with_two_secrets_accepts_either() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    assert signing.verify([new, old], signing.sign_now(old, BODY), BODY)
    assert signing.verify([new, old], signing.sign_now(new, BODY), BODY)


@pytest.mark.parametrize(
    "signature", ["garbage", "v1,", "v1,not base64!", "v1,a,b", "v2," + "A" * 44]
)
def test_malformed_signature_headers_never_crash(signature: str) -> None:
    secret = signing.new_secret()
    headers = {**signing.sign_now(secret, BODY), "webhook-signature": signature}
    assert _reason([secret], headers) in {
        SignatureFailure.INVALID_HEADERS,
        SignatureFailure.BAD_SIGNATURE,
    }


def test_malformed_timestamp_is_invalid() -> None:
    secret = signing.new_secret()
    headers = {**signing.sign_now(secret, BODY), "webhook-timestamp": "yesterday"}
    assert _reason([secret], headers) is SignatureFailure.INVALID_HEADERS


def test_non_utf8_body_is_refused_not_crashing() -> None:
    secret = signing.new_secret()
    headers = signing.sign_now(secret, BODY)
    assert _reason([secret], headers, b"\xff\xfe") is SignatureFailure.BAD_SIGNATURE


def test_no_secret_configured() -> None:
    headers = signing.sign_now(signing.new_secret(), BODY)
    assert _reason([], headers) is SignatureFailure.NOT_CONFIGURED
    assert _reason([""], headers) is SignatureFailure.NOT_CONFIGURED
