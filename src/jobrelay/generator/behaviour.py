"""How the reference generator behaves for one request, so tests can make it fail or stall.

Directives come from `JOBRELAY_GENERATOR_BEHAVIOUR` (for every request, separated by spaces or
commas) and from `[gen:...]` markers inside a request's `input.extra_instructions` (for that
request only, overriding the environment):

| directive          | effect                                                               |
|--------------------|----------------------------------------------------------------------|
| `delay=SECONDS`    | time from `/generate` to the result (default `JOBRELAY_GENERATOR_DELAY`) |
| `fail` `fail=TEXT` | post a failure callback instead of the result                        |
| `status=CODE`      | answer `/generate` with that HTTP status and do nothing else         |
| `flaky=N`          | answer the first N `/generate` calls for a job with 503, then accept |
| `accept-delay=S`   | wait S seconds before answering `/generate` (the caller times out)   |
| `silent`           | accept, then never call back (the job reaches its deadline)          |
| `invalid=INDEX`    | make question INDEX (0-based) invalid (`correct_answer: "E"`)        |
| `legacy`           | call back like the original AI worker: `X-AI-Worker-Token` only, no  |
|                    | signature, to `/api/ai/receive/` on the callback URL's host          |

Example: `"extra_instructions": "Office scenarios. [gen:delay=0.5] [gen:fail=GPU out of memory]"`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

__all__ = ["Behaviour", "parse_behaviour"]

_MARKER = re.compile(r"\[gen:([^\]]*)\]", re.IGNORECASE)


@dataclass(frozen=True)
class Behaviour:
    """The resolved directives for one request."""

    delay: float
    fail: str | None = None
    status: int | None = None
    flaky: int = 0
    accept_delay: float = 0.0
    silent: bool = False
    invalid_index: int | None = None
    legacy: bool = False


def parse_behaviour(default_delay: float, environment: str, extra_instructions: str) -> Behaviour:
    """Apply the environment's directives, then the request's markers, over the defaults."""
    behaviour = Behaviour(delay=default_delay)
    for directive in re.split(r"[\s,]+", environment.strip()):
        behaviour = _apply(behaviour, directive)
    for marker in _MARKER.findall(extra_instructions):
        behaviour = _apply(behaviour, marker)
    return behaviour


def _apply(behaviour: Behaviour, directive: str) -> Behaviour:
    name, _, value = directive.strip().partition("=")
    name = name.strip().lower()
    value = value.strip()
    try:
        if name == "delay":
            return replace(behaviour, delay=max(0.0, float(value)))
        if name == "fail":
            return replace(behaviour, fail=value or "The generator failed to produce questions.")
        if name == "status":
            return replace(behaviour, status=int(value))
        if name == "flaky":
            return replace(behaviour, flaky=max(0, int(value)))
        if name == "accept-delay":
            return replace(behaviour, accept_delay=max(0.0, float(value)))
        if name == "silent":
            return replace(behaviour, silent=True)
        if name == "invalid":
            return replace(behaviour, invalid_index=max(0, int(value or "0")))
        if name == "legacy":
            return replace(behaviour, legacy=True)
    except ValueError:
        return behaviour
    return behaviour
