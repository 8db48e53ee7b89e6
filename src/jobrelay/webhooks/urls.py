"""Webhook URL guard against SSRF: the host must resolve to public addresses only.

Checked at submit and again when connecting (DNS can change in between); `WEBHOOK_ALLOW_PRIVATE`
admits loopback and private ranges, never link-local, where cloud metadata services live.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from jobrelay.config import Settings
from jobrelay.errors import Unprocessable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _refusal(url: str, reason: str) -> Unprocessable:
    return Unprocessable(
        f"The webhook URL is refused: {reason}.",
        code="webhook_url_refused",
        details=[{"loc": ["body", "webhook"], "msg": reason, "type": "value_error", "url": url}],
    )


def address_refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why a webhook may not go to this address, or None if it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_link_local:
        return f"{address} is link-local"
    if address.is_multicast:
        return f"{address} is multicast"
    if address.is_unspecified or address.is_reserved:
        return f"{address} is not a routable address"
    if allow_private:
        return None
    if address.is_loopback:
        return f"{address} is a loopback address"
    if address.is_private or not address.is_global:
        return f"{address} is a private address"
    return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0]) for info in infos]


async def check_webhook_url(url: str, settings: Settings) -> list[IPAddress]:
    """Raise `Unprocessable` unless every address of the URL's host may be called."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refusal(url, "it must be an absolute http or https URL")
    if parts.username or parts.password:
        raise _refusal(url, "credentials in the URL are not allowed")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise _refusal(url, "the port is not valid") from exc
    try:
        addresses = await resolve(parts.hostname, port)
    except (OSError, UnicodeError) as exc:
        raise _refusal(url, f"the host {parts.hostname!r} does not resolve") from exc
    if not addresses:
        raise _refusal(url, f"the host {parts.hostname!r} does not resolve")
    for address in addresses:
        reason = address_refusal(address, allow_private=settings.webhook_allow_private)
        if reason is not None:
            raise _refusal(url, reason)
    return addresses
