"""Bad input is a 4xx in the contract's error shape, never a 500, and stores nothing."""

from __future__ import annotations

import pytest

from tests.conftest import MakeUser, Stack
from tests.jobs.test_api_contract import assert_error_shape


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"", "validation_error"),
        (b"[]", "validation_error"),
        (b'{"kind": "prompt.generate"}', "validation_error"),
        (b'{"kind": "prompt.generate", "input": "text"}', "validation_error"),
        (b'{"kind": "video.render", "input": {}}', "unknown_kind"),
        (b'{"kind": "prompt.generate", "input": {"manual_prompt": 5}}', "invalid_input"),
        (
            b'{"kind": "prompt.generate", "input": {"manual_prompt": "x"}, "colour": 1}',
            "validation_error",
        ),
        (
            b'{"kind": "prompt.generate", "input": {"manual_prompt": "x", "extra": 1}}',
            "invalid_input",
        ),
        (b'{"kind": "prompt.generate", "input": {"manual_prompt": "   "}}', "invalid_input"),
        (
            b'{"kind": "prompt.generate", "input": {"manual_prompt": "a\\u0000b"}}',
            "invalid_characters",
        ),
        (
            b'{"kind": "prompt.generate", "input": {"manual_prompt": "x"}, "metadata": {"k\\u0000": 1}}',
            "invalid_characters",
        ),
        (
            b'{"kind": "prompt.generate", "input": {"manual_prompt": "x"}, "webhook_events_filter": ["later"]}',
            "validation_error",
        ),
        (
            b'{"kind": "prompt.generate", "input": {"manual_prompt": "x"}, "webhook": "ftp://example.com/"}',
            "webhook_url_refused",
        ),
        (
            b'{"kind": "prompt.generate", "input": {"manual_prompt": "x"}, "user_id": "me"}',
            "validation_error",
        ),
        (b'{"kind": "quiz.generate", "input": {"quiz_size": 0}}', "invalid_input"),
        (b'{"kind": "records.ingest", "input": {"records": []}}', "invalid_input"),
    ],
)
async def test_bad_submissions(make_user: MakeUser, content: bytes, code: str) -> None:
    user = await make_user()
    response = await user.client.post(
        "/v1/jobs", content=content, headers={"Content-Type": "application/json"}
    )
    assert_error_shape(response, 422, code)
    assert (await user.client.get("/v1/jobs")).json()["items"] == []


async def test_body_over_the_limit_is_413(make_user: MakeUser, stack: Stack) -> None:
    user = await make_user()
    big = (
        b'{"kind": "prompt.generate", "input": {"manual_prompt": "'
        + b"x" * (5 * 1024 * 1024)
        + b'"}}'
    )
    response = await user.client.post(
        "/v1/jobs", content=big, headers={"Content-Type": "application/json"}
    )
    assert_error_shape(response, 413, "payload_too_large")

    async def chunks():
        for _ in range(6):
            yield b"x" * (1024 * 1024)

    streamed = await user.client.post(
        "/v1/jobs", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_error_shape(streamed, 413, "payload_too_large")
    assert (await user.client.get("/v1/jobs")).json()["items"] == []


async def test_wrong_method_and_media_type(make_user: MakeUser) -> None:
    user = await make_user()
    assert_error_shape(await user.client.delete("/v1/jobs"), 405)
    response = await user.client.post(
        "/v1/jobs",
        content=b"kind=prompt",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert 400 <= response.status_code < 500
    assert_error_shape(response, response.status_code)
