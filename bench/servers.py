"""The no-relay comparison servers for bench/run.py, on 127.0.0.1 only.

- :class:`PlainHTTPServer`: ``http.server.ThreadingHTTPServer`` with HTTP/1.1
  keep-alive and TCP_NODELAY (http.server leaves Nagle on by default, which
  stalls every keep-alive response ~40 ms; see baselines.md pitfall 1).
- :class:`PlainWSServer`: a thread-per-connection WebSocket server on wsproto
  (already a dependency of the emulator, so nothing new to install).

Both serve the same application as the relayed listener in bench/roles.py
(see :mod:`bench.app`): ``/small``, ``/big?size=N``, ``POST /echo`` over HTTP;
``/echo``, ``/sink`` and ``/source`` over WebSocket.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, List, Optional, Tuple
from urllib.parse import urlsplit

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection, BytesMessage, CloseConnection, Ping, Request, TextMessage,
)

import app


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def _answer(self, body: bytes) -> None:
        status, ctype, payload = app.http_response(self.command, self.path, body)
        head = (
            f"HTTP/1.1 {status} OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode("ascii")
        self.wfile.write(head + payload)  # one write: no Nagle/delayed-ACK interplay at all

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._answer(b"")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self._answer(self.rfile.read(length) if length else b"")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass


class PlainHTTPServer:
    """The benchmark's HTTP application served directly, no relay."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="bench-plain-http", daemon=True)

    def start(self) -> "PlainHTTPServer":
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class PlainWSServer:
    """A WebSocket server on wsproto: one thread per connection, the same routes as the listener."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name="bench-plain-ws", daemon=True)

    def start(self) -> "PlainWSServer":
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        try:
            self._sock.close()
        except OSError:
            pass

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(conn,), name="bench-plain-ws-conn", daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            _WSSession(sock).run()
        except OSError:
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass


class _WSSession:
    """One server-side WebSocket connection: handshake, then the route's behaviour."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.ws = WSConnection(ConnectionType.SERVER)
        self.pending: List[Any] = []

    def _fill(self) -> bool:
        data = self.sock.recv(262144)
        if not data:
            return False
        self.ws.receive_data(data)
        self.pending.extend(self.ws.events())
        return True

    def send(self, event: Any) -> None:
        self.sock.sendall(self.ws.send(event))

    def next_message(self) -> Optional[Tuple[bool, Any]]:
        """(is_text, whole message) or None when the peer closed."""
        parts: List[Any] = []
        while True:
            while not self.pending:
                if not self._fill():
                    return None
            event = self.pending.pop(0)
            if isinstance(event, (TextMessage, BytesMessage)):
                parts.append(event.data)
                if event.message_finished:
                    text = isinstance(event, TextMessage)
                    return text, ("".join(parts) if text else b"".join(parts))
            elif isinstance(event, Ping):
                self.send(event.response())
            elif isinstance(event, CloseConnection):
                self.send(event.response())
                return None

    def run(self) -> None:
        request: Optional[Request] = None
        while request is None:
            if not self._fill():
                return
            for event in list(self.pending):
                if isinstance(event, Request):
                    request = event
            self.pending = [e for e in self.pending if not isinstance(e, Request)]
        self.send(AcceptConnection())
        route = urlsplit(request.target)
        app.serve_ws(route.path, route.query, self.next_message, self._send_message)

    def _send_message(self, message: Any) -> None:
        if isinstance(message, str):
            self.send(TextMessage(data=message))
        else:
            self.send(BytesMessage(data=message))
