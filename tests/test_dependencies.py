"""The API key is read from the authorization header exactly as FastAPI's HTTPBearer reads it."""

from __future__ import annotations

import pytest

from jobrelay.dependencies import bearer_token


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Bearer jr_key", "jr_key"),
        ("bearer jr_key", "jr_key"),
        ("BEARER   jr_key  ", "jr_key"),
        ("", None),
        ("Bearer", None),
        ("Bearer    ", None),
        ("Basic amFuZTpwdw==", None),
        ("jr_key", None),
    ],
)
def test_bearer_token(header: str, key: str | None) -> None:
    assert bearer_token(header) == key
