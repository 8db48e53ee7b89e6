"""A real TCP proxy in front of the API that breaks connections on purpose.

One request per connection (the proxy asks the API to close after answering), so each request
meets the rule for it: forward it, answer 503 itself, forward it and then hang up before the
answer reaches the client (the API did the work, the client never hears), or forward an event
stream and cut it after some events.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Seen:
    """One request that reached the proxy (the `number`-th, from 0)."""

    number: int
    method: str
    path: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Action:
    kind: str  # forward | answer_503 | lose_answer | cut_stream
    # cut_stream: hang up in the middle of the frame after this many complete SSE frames.
    frames: int = 0


FORWARD = Action("forward")
ANSWER_503 = Action("answer_503")
LOSE_ANSWER = Action("lose_answer")

Rule = Callable[[Seen], Action]

_BUSY = b'{"error": {"code": "not_ready", "message": "PostgreSQL is down", "details": []}}'


@dataclass
class FaultyProxy:
    upstream: str
    rule: Rule = lambda seen: FORWARD
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        parts = urlsplit(self.upstream)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 80)

    def requests(self, method: str, path_part: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.method == method and path_part in s.path]

    def _record(self, method: str, path: str, headers: dict[str, str]) -> Seen:
        with self._lock:
            seen = Seen(len(self.seen), method, path, headers)
            self.seen.append(seen)
            return seen

    def handle(self, client: socket.socket) -> None:
        head, body = _read_request(client)
        if head is None:
            return
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        action = self.rule(self._record(method, path, headers))
        if action.kind == "answer_503":
            client.sendall(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                b"Retry-After: 0\r\nConnection: close\r\n"
                + f"Content-Length: {len(_BUSY)}\r\n\r\n".encode()
                + _BUSY
            )
            return
        kept = [line for line in lines[1:] if not line.lower().startswith("connection:")]
        request = "\r\n".join([lines[0], *kept, "Connection: close", "", ""]).encode("latin-1")
        with socket.create_connection(self._target, timeout=60) as upstream:
            upstream.sendall(request + body)
            if action.kind == "lose_answer":
                upstream.recv(1)  # the API answered: the work is done
                return
            _relay(upstream, client, cut_after_frames=action.frames or None)

    @contextmanager
    def running(self) -> Iterator[FaultyProxy]:
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                with suppress(OSError):
                    proxy.handle(sock)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(10)


def _read_request(client: socket.socket) -> tuple[bytes | None, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = client.recv(65536)
        if not chunk:
            break
        body += chunk
    return head, body


def _relay(upstream: socket.socket, client: socket.socket, *, cut_after_frames: int | None) -> None:
    """Copy the answer to the client as it comes; with `cut_after_frames`, hang up a few bytes
    into the frame that follows that many complete event-stream frames."""
    buffer = b""
    forwarded = 0
    while True:
        chunk = upstream.recv(65536)
        if not chunk:
            client.sendall(buffer[forwarded:])
            return
        buffer += chunk
        cut = None if cut_after_frames is None else _cut_position(buffer, cut_after_frames)
        limit = len(buffer) if cut is None else cut
        client.sendall(buffer[forwarded:limit])
        forwarded = limit
        if cut is not None:
            client.shutdown(socket.SHUT_RDWR)
            return


def _cut_position(buffer: bytes, frames: int) -> int | None:
    """A few bytes into the frame after `frames` complete ones, once that frame has begun."""
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    position = head_end + 4
    for _ in range(frames):
        found = buffer.find(b"\n\n", position)
        if found < 0:
            return None
        position = found + 2
    next_frame = buffer.find(b"data:", position)
    if next_frame < 0:
        return None
    return min(len(buffer), next_frame + 12)
