"""The sender in-process: addresses are checked again when connecting (a name may resolve
elsewhere than at submit), the request goes to the checked address with the original Host,
redirects are not followed, and the timeout bounds the whole attempt."""

from __future__ import annotations

import time

from jobrelay.config import Settings
from jobrelay.embedded import free_tcp_port
from jobrelay.webhooks import sender
from jobrelay.webhooks.sender import Outcome
from tests.webhooks.receiver import Receiver

BODY = b'{"type":"job.completed"}'


def settings(*, allow_private: bool, timeout: float = 5.0) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, webhook_allow_private=allow_private, webhook_timeout=timeout
    )


async def test_loopback_is_refused_at_connect_time_without_sending(receiver: Receiver) -> None:
    attempt = await sender.post(f"{receiver.url}/x", BODY, {}, settings(allow_private=False))
    assert attempt.outcome is Outcome.REFUSED and not attempt.outcome.retryable
    assert attempt.status_code is None
    assert "loopback" in (attempt.error or "")
    assert receiver.received == []


async def test_a_name_resolving_to_loopback_is_refused_at_connect_time(receiver: Receiver) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    attempt = await sender.post(
        f"http://localhost:{port}/x", BODY, {}, settings(allow_private=False)
    )
    assert attempt.outcome is Outcome.REFUSED
    assert receiver.received == []


async def test_metadata_address_is_refused_even_with_private_allowed() -> None:
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[fe80::1]:8080/"):
        attempt = await sender.post(url, BODY, {}, settings(allow_private=True))
        assert attempt.outcome is Outcome.REFUSED, url
        assert "link-local" in (attempt.error or "")


async def test_request_goes_to_the_checked_address_with_the_original_host(
    receiver: Receiver,
) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    attempt = await sender.post(
        f"http://localhost:{port}/pinned?x=1",
        BODY,
        {"webhook-id": "msg_1"},
        settings(allow_private=True),
    )
    assert attempt.outcome is Outcome.DELIVERED and attempt.status_code == 200
    [request] = receiver.at("/pinned")
    assert request.headers["host"] == f"localhost:{port}"
    assert request.headers["webhook-id"] == "msg_1"
    assert request.body == BODY
    assert request.peer == "127.0.0.1"


async def test_redirect_is_recorded_not_followed(receiver: Receiver) -> None:
    receiver.script("/from", 307)
    receiver.redirects["/from"] = f"{receiver.url}/to"
    attempt = await sender.post(f"{receiver.url}/from", BODY, {}, settings(allow_private=True))
    assert attempt.outcome is Outcome.FAILED and attempt.outcome.retryable
    assert attempt.status_code == 307
    assert "not followed" in (attempt.error or "")
    assert receiver.at("/to") == []


async def test_slow_receiver_times_out(receiver: Receiver) -> None:
    receiver.delays["/slow"] = 3.0
    started = time.monotonic()
    attempt = await sender.post(
        f"{receiver.url}/slow", BODY, {}, settings(allow_private=True, timeout=0.5)
    )
    assert time.monotonic() - started < 2.0
    assert attempt.outcome is Outcome.TIMEOUT and attempt.outcome.retryable
    assert attempt.status_code is None


async def test_closed_port_is_a_retryable_error() -> None:
    port = free_tcp_port()
    attempt = await sender.post(f"http://127.0.0.1:{port}/", BODY, {}, settings(allow_private=True))
    assert attempt.outcome is Outcome.ERROR and attempt.outcome.retryable
    assert attempt.error


async def test_status_codes_are_classified(receiver: Receiver) -> None:
    receiver.script("/codes", 204, 410, 500, 404)
    outcomes = [
        (await sender.post(f"{receiver.url}/codes", BODY, {}, settings(allow_private=True)))
        for _ in range(4)
    ]
    assert [(a.outcome, a.status_code) for a in outcomes] == [
        (Outcome.DELIVERED, 204),
        (Outcome.GONE, 410),
        (Outcome.FAILED, 500),
        (Outcome.FAILED, 404),
    ]
    assert not outcomes[1].outcome.retryable
    assert "answer 500" in (outcomes[2].error or "")
