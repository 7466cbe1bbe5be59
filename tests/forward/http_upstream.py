"""A real web server for the ``-H`` tests: ``http.server`` on 127.0.0.1, one thread per connection.

Routes: ``/echo...`` (what arrived, as JSON), ``/redirect`` (302 to itself, absolute),
``/hop`` (hop-by-hop headers in the answer), ``/upload`` (a chunked or sized body hashed as it
is read), ``/download?size=N`` (N pattern bytes, streamed), ``/status/N``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator, List, Tuple

__all__ = ["Upstream", "pattern"]

BLOCK = 1024 * 1024


def pattern(size: int) -> Iterator[bytes]:
    """``size`` deterministic bytes in blocks (the download's content)."""
    block = bytes(range(256)) * (BLOCK // 256)
    left = size
    while left > 0:
        yield block[:min(left, BLOCK)]
        left -= BLOCK


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # head and body are separate writes: no delayed-ACK stall
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet tests
        pass

    def _send(self, status: int, body: bytes, headers: List[Tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.seen.append((self.command, self.path, dict(self.headers.items())))
        path, _, query = self.path.partition("?")
        if path.startswith("/app/echo") or path.startswith("/echo"):
            body = json.dumps({"method": self.command, "path": self.path, "headers": self.headers.items()}).encode()
            self._send(200, body, [("Content-Type", "application/json")])
        elif path == "/app/redirect":
            port = self.server.server_address[1]
            self._send(302, b"", [("Location", f"http://127.0.0.1:{port}/app/landing?from=redirect")])
        elif path == "/app/hop":
            self._send(200, b"hop", [("Connection", "keep-alive, X-Hop"), ("X-Hop", "secret"),
                                     ("Keep-Alive", "timeout=5"), ("X-End", "kept"),
                                     ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2, c; Path=/")])
        elif path.startswith("/app/status/"):
            self._send(int(path.rsplit("/", 1)[1]), b"status")
        elif path == "/app/download":
            size = int(query.partition("size=")[2] or 0)
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            for block in pattern(size):
                self.wfile.write(block)
        else:
            self._send(404, b"not found")

    do_HEAD = do_GET
    do_DELETE = do_GET

    def do_POST(self) -> None:  # noqa: N802
        self.server.seen.append((self.command, self.path, dict(self.headers.items())))
        size, digest = self._read_body()
        self._send(200, f"{size} {digest}".encode(), [("Content-Type", "text/plain")])

    do_PUT = do_POST

    def _read_body(self) -> Tuple[int, str]:
        digest, size = hashlib.sha256(), 0
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                length = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if length == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                while length:
                    data = self.rfile.read(min(length, BLOCK))
                    digest.update(data)
                    size += len(data)
                    length -= len(data)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left:
                data = self.rfile.read(min(left, BLOCK))
                digest.update(data)
                size += len(data)
                left -= len(data)
        return size, digest.hexdigest()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    seen: List[Tuple[str, str, dict]]


class Upstream:
    """``with Upstream() as web: web.port``; ``web.seen`` lists (method, raw target, headers)."""

    def __init__(self) -> None:
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.seen = []
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="test-http-upstream", daemon=True)

    @property
    def seen(self) -> List[Tuple[str, str, dict]]:
        return self.server.seen

    def __enter__(self) -> "Upstream":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)
