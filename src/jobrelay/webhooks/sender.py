"""The HTTP side of one webhook attempt, safe against server-side request forgery.

The host is resolved here, every address is checked (`urls.address_refusal`), and the request
goes to a checked address while carrying the original `Host` header and TLS server name, so a
DNS answer that changed since submit (rebinding) cannot steer the request elsewhere. Redirects
are never followed, proxies from the environment are ignored, and the whole attempt, connecting
included, is bounded by `webhook_timeout`.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import ssl
import time
from dataclasses import dataclass, field
from functools import lru_cache

import certifi
import httpx

from jobrelay import __version__
from jobrelay.config import Settings
from jobrelay.errors import Unprocessable
from jobrelay.webhooks import urls

USER_AGENT = f"jobrelay-webhooks/{__version__}"
_SNIPPET_BYTES = 300


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"  # 2xx
    FAILED = "failed"  # any other HTTP status (redirects included); retried
    GONE = "gone"  # 410: the receiver wants no more messages for this job
    TIMEOUT = "timeout"  # no complete answer within the timeout; retried
    ERROR = "error"  # could not connect, or the connection broke; retried
    REFUSED = "refused"  # the host resolved to an address we may not call; not retried

    @property
    def retryable(self) -> bool:
        return self in (Outcome.FAILED, Outcome.TIMEOUT, Outcome.ERROR)


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    status_code: int | None
    error: str | None
    duration_ms: float | None


@dataclass
class _Timer:
    started: float = field(default_factory=time.monotonic)

    def result(
        self, outcome: Outcome, status_code: int | None = None, error: str | None = None
    ) -> Attempt:
        elapsed = round((time.monotonic() - self.started) * 1000, 1)
        return Attempt(outcome, status_code, error[:1000] if error else None, elapsed)


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())


def _host_header(url: httpx.URL) -> str:
    host = url.raw_host.decode("ascii")
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{url.port}" if url.port is not None else host


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def post(url: str, body: bytes, headers: dict[str, str], settings: Settings) -> Attempt:
    """POST `body` to `url` once; never raises for anything the receiver or network does."""
    timer = _Timer()
    try:
        async with asyncio.timeout(settings.webhook_timeout):
            try:
                addresses = await urls.check_webhook_url(url, settings)
            except Unprocessable as exc:
                return timer.result(Outcome.REFUSED, error=exc.message)
            unique = list(dict.fromkeys(addresses))
            return await _send(url, unique, body, headers, settings, timer)
    except TimeoutError:
        return timer.result(
            Outcome.TIMEOUT, error=f"no answer within {settings.webhook_timeout:g} s"
        )


async def _send(
    url: str,
    addresses: list[urls.IPAddress],
    body: bytes,
    headers: dict[str, str],
    settings: Settings,
    timer: _Timer,
) -> Attempt:
    target = httpx.URL(url)
    host = target.raw_host.decode("ascii")
    extensions = {} if _is_ip_literal(host) else {"sni_hostname": host}
    request_headers = {
        **headers,
        "host": _host_header(target),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
    last_error = "no address to connect to"
    async with httpx.AsyncClient(
        verify=_tls_context(),
        trust_env=False,
        follow_redirects=False,
        timeout=httpx.Timeout(settings.webhook_timeout),
        limits=httpx.Limits(max_keepalive_connections=0),
    ) as client:
        for address in addresses:
            request = client.build_request(
                "POST",
                target.copy_with(host=str(address)),
                content=body,
                headers=request_headers,
                extensions=extensions,
            )
            try:
                response = await client.send(request, stream=True)
                try:
                    snippet = await _read_some(response)
                finally:
                    await response.aclose()
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last_error = f"{address}: {type(exc).__name__}: {exc}"
                continue
            except httpx.TimeoutException as exc:
                return timer.result(Outcome.TIMEOUT, error=f"{type(exc).__name__}: {exc}")
            except httpx.HTTPError as exc:
                return timer.result(Outcome.ERROR, error=f"{type(exc).__name__}: {exc}")
            return _classify(response, snippet, timer)
    return timer.result(Outcome.ERROR, error=last_error)


async def _read_some(response: httpx.Response) -> str:
    """The start of the answer, for the delivery log; the rest is not read."""
    collected = b""
    async for chunk in response.aiter_raw():
        collected += chunk
        if len(collected) >= _SNIPPET_BYTES:
            break
    return collected[:_SNIPPET_BYTES].decode("utf-8", errors="replace")


def _classify(response: httpx.Response, snippet: str, timer: _Timer) -> Attempt:
    code = response.status_code
    if 200 <= code < 300:
        return timer.result(Outcome.DELIVERED, code)
    if code == 410:
        return timer.result(Outcome.GONE, code, "410 Gone: no more messages for this job")
    detail = f"HTTP {code} {response.reason_phrase}".strip()
    if 300 <= code < 400 and response.headers.get("location"):
        detail += f" (redirect to {response.headers['location']} not followed)"
    elif snippet.strip():
        detail += f": {snippet.strip()}"
    return timer.result(Outcome.FAILED, code, detail)
