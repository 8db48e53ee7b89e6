"""Schemathesis hooks for the values whose validity no schema can state, because it depends on
what the running service holds rather than on the request's shape:

- `user_id` of a submission: the user must exist;
- `webhook`: the host must resolve to an address the service may call;
- `Idempotency-Key`: reusing one with another body is a `422` by contract;
- `cursor` of `GET /v1/jobs`: only cursors the API gave out are valid.

Just before each call, schema-valid values of these are swapped for ones that are valid on the
stack under test (or left out, for the cursor), so a `422` for them is never mistaken for a
schema-valid request refused. Schema-invalid values, and every other field, stay as generated.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import MutableMapping
from typing import Any

import schemathesis

USER_ID = int(os.environ.get("JOBRELAY_FUZZ_USER_ID", "1"))
WEBHOOK = os.environ.get("JOBRELAY_FUZZ_WEBHOOK", "http://127.0.0.1:9/hook")
MAX_USER_ID = 2**62
_HTTP_URL = re.compile(r"^https?://")


def _submission(body: Any) -> None:
    if not isinstance(body, MutableMapping):
        return
    user_id = body.get("user_id")
    is_number = isinstance(user_id, int | float) and not isinstance(user_id, bool)
    if is_number and float(user_id).is_integer() and 1 <= user_id <= MAX_USER_ID:
        body["user_id"] = USER_ID
    webhook = body.get("webhook")
    if isinstance(webhook, str) and _HTTP_URL.match(webhook) and len(webhook) <= 2048:
        body["webhook"] = WEBHOOK


def _fresh_idempotency_key(headers: Any) -> None:
    if not isinstance(headers, MutableMapping):
        return
    for name, value in list(headers.items()):
        is_key = name.lower() == "idempotency-key" and isinstance(value, str)
        if is_key and value.strip() and len(value) <= 255:
            headers[name] = f"{value[:200]}-{uuid.uuid4().hex}"


def _no_made_up_cursor(query: Any) -> None:
    cursor = query.get("cursor") if isinstance(query, MutableMapping) else None
    if isinstance(cursor, str) and len(cursor) <= 200:
        del query["cursor"]


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if case.meta is not None and case.meta.generation.mode.is_negative:
        return  # a negative case is refused anyway; editing it would make Schemathesis revalidate
    operation = (case.operation.method.upper(), case.operation.path)
    if operation == ("POST", "/v1/jobs"):
        _submission(case.body)
        _fresh_idempotency_key(case.headers)
    elif operation == ("GET", "/v1/jobs"):
        _no_made_up_cursor(case.query)
