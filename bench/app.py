"""The benchmark application, the same behind every server (plain, hybridconn listener).

HTTP: ``GET /small`` -> 13 bytes; ``GET /big?size=N`` -> N bytes; ``POST /echo`` -> the body.
WebSocket, by path:

- ``/echo``: every message back, same type;
- ``/sink``: counts binary bytes until a text ``done``, then answers the count as text;
- ``/source``: on a text ``go TOTAL SIZE`` sends TOTAL bytes as SIZE-byte binary messages, then text ``done``.

The Node peers in bench/node_peers/ implement the same routes for hyco-https/hyco-ws.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

SMALL = b"hello, world\n"
_blobs: Dict[int, bytes] = {}


def blob(size: int) -> bytes:
    """``size`` bytes of a fixed pattern, cached (built once per size)."""
    data = _blobs.get(size)
    if data is None:
        period = bytes(range(256))
        data = _blobs[size] = (period * (size // 256 + 1))[:size]
    return data


def http_response(method: str, target: str, body: bytes) -> Tuple[int, str, bytes]:
    """(status, content type, body) for one request."""
    parts = urlsplit(target)
    path = parts.path.rsplit("/", 1)[-1]
    if path == "small":
        return 200, "text/plain", SMALL
    if path == "big":
        size = int(parse_qs(parts.query).get("size", ["1000000"])[0])
        return 200, "application/octet-stream", blob(min(size, 64_000_000))
    if path == "echo" and method == "POST":
        return 200, "application/octet-stream", body
    return 404, "text/plain", b"no such route\n"


def serve_ws(path: str, query: str, next_message: Callable[[], Optional[Tuple[bool, Any]]],
             send: Callable[[Any], None]) -> None:
    """Run one WebSocket connection's route until the peer closes (next_message() -> None)."""
    route = path.rstrip("/").rsplit("/", 1)[-1]
    count = 0
    while True:
        item = next_message()
        if item is None:
            return
        is_text, message = item
        if route == "sink":
            if is_text and message == "done":
                send(str(count))
                count = 0
            elif not is_text:
                count += len(message)
        elif route == "source" and is_text and message.startswith("go "):
            _, total, size = message.split()
            chunk = blob(int(size))
            for _ in range(int(total) // int(size)):
                send(chunk)
            send("done")
        else:
            send(message)
