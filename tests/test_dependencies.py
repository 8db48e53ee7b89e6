"""The API key is read from the authorization header exactly as FastAPI's HTTPBearer reads it."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from jobrelay.dependencies import _bearer_token


def _request(authorization: str | None) -> Request:
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Bearer jr_key", "jr_key"),
        ("bearer jr_key", "jr_key"),
        ("BEARER   jr_key  ", "jr_key"),
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer    ", None),
        ("Basic amFuZTpwdw==", None),
        ("jr_key", None),
    ],
)
def test_bearer_token(header: str | None, key: str | None) -> None:
    assert _bearer_token(_request(header)) == key
