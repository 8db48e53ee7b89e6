"""Webhook URLs that point inside the network are refused at submit (`422`), before anything is
stored; link-local (cloud metadata) stays refused even when private addresses are allowed.
Only IP literals and `localhost` are used: refusing never needs to connect anywhere."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import MakeUser
from tests.support.jobs import prompt_input
from tests.webhooks.receiver import Receiver

REFUSED_UNLESS_PRIVATE_ALLOWED = [
    "http://127.0.0.1/",
    "http://[::1]/",
    "http://10.0.0.1/",
    "http://172.16.5.4:8080/hook",
    "http://192.168.1.10/hook",
    "http://2130706433/",  # 127.0.0.1 as one decimal number
    "http://0x7f000001/",  # the same in hexadecimal
    "http://127.1/",  # the same, abbreviated
    "http://localhost:9000/hook",
    "http://[::ffff:10.0.0.1]/",  # IPv4-mapped IPv6
    "http://[fd00::1]/",  # unique local IPv6
    "https://100.64.0.1/",  # shared address space (carrier-grade NAT)
]
ALWAYS_REFUSED = [
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://[::ffff:169.254.169.254]/",
    "http://[fe80::1]/",
    "http://224.0.0.1/",  # multicast
    "http://0.0.0.0/",
    "http://user:secret@example.com/",
    "ftp://example.com/hook",
    "/relative/path",
]


def assert_refused(response: Any, url: str) -> None:
    assert response.status_code == 422, (url, response.text)
    error = response.json()["error"]
    assert error["code"] == "webhook_url_refused", (url, error)
    assert error["details"][0]["loc"] == ["body", "webhook"]


async def test_private_addresses_are_refused_when_not_allowed(
    make_user: MakeUser, spawn_stack: Any
) -> None:
    strict = await spawn_stack(webhook_allow_private="false")
    user = await make_user(on=strict)
    for url in REFUSED_UNLESS_PRIVATE_ALLOWED + ALWAYS_REFUSED:
        response = await user.client.post(
            "/v1/jobs", json={"kind": "prompt.generate", "input": prompt_input(), "webhook": url}
        )
        assert_refused(response, url)
    listed = await user.client.get("/v1/jobs")
    assert listed.json()["items"] == [], "a refused submission stores nothing"


@pytest.mark.parametrize("url", ALWAYS_REFUSED)
async def test_link_local_and_the_like_stay_refused_with_private_allowed(
    make_user: MakeUser, url: str
) -> None:
    user = await make_user()
    response = await user.client.post(
        "/v1/jobs", json={"kind": "prompt.generate", "input": prompt_input(), "webhook": url}
    )
    assert_refused(response, url)


async def test_loopback_is_accepted_when_private_is_allowed(
    make_user: MakeUser, receiver: Receiver
) -> None:
    user = await make_user()
    response = await user.client.post(
        "/v1/jobs",
        json={"kind": "prompt.generate", "input": prompt_input(), "webhook": receiver.url},
    )
    assert response.status_code == 202, response.text
    assert response.json()["webhook"] == receiver.url
