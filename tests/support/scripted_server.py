"""A scripted HTTP server on 127.0.0.1 for the client's own tests.

It answers every request (a WebSocket upgrade too, which it refuses) with
whatever status, reason, headers and body the test chose, and records what
it received. It stands in for the relay where the test needs an answer the
emulator would never give (a relay error shape, a silent server).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Iterator, List, Optional, Tuple

from tests.support.sockets import websocket_accept


class Recorded:
    """One request as the server saw it."""

    def __init__(self, method: str, target: str, headers: Dict[str, str], body: bytes) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body


class ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status = 200
        self.reason = "OK"
        self.headers: List[Tuple[str, str]] = []
        self.body = b""
        self.silent = threading.Event()  # when set: read the request, never answer
        self.release = threading.Event()  # set to let silent handlers finish
        self.requests: List[Recorded] = []
        #: When not None: complete WebSocket upgrades, answering with this subprotocol ("" for none).
        self.upgrade_subprotocol: Optional[str] = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def answer(
        self, status: int, reason: str = "", headers: Optional[Dict[str, str]] = None, body: bytes = b""
    ) -> None:
        self.status, self.reason, self.body = status, reason, body
        self.headers = list((headers or {}).items())


class _Handler(BaseHTTPRequestHandler):
    server: ScriptedServer
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append(Recorded(self.command, self.path, dict(self.headers.items()), body))
        if self.server.silent.is_set():
            self.server.release.wait(30)
            self.close_connection = True
            return
        if self.server.upgrade_subprotocol is not None and "Sec-WebSocket-Key" in self.headers:
            self._upgrade(self.headers["Sec-WebSocket-Key"], self.server.upgrade_subprotocol)
            return
        self.send_response(self.server.status, self.server.reason)
        for name, value in self.server.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(self.server.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(self.server.body)
        self.close_connection = True

    def _upgrade(self, key: str, subprotocol: str) -> None:
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", websocket_accept(key))
        if subprotocol:
            self.send_header("Sec-WebSocket-Protocol", subprotocol)
        self.end_headers()
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


@contextmanager
def scripted_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="test-scripted-server")
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)
