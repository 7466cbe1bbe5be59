"""A small HTTP proxy on 127.0.0.1 for tests: CONNECT tunnels and absolute-form forwarding.

websocket-client always tunnels through ``CONNECT host:port`` (for ``ws://``
too); requests tunnels for ``https://`` and sends ``GET http://host/...`` to
the proxy for ``http://``. Both are served here, one connection per thread,
and every request line is recorded so a test can prove the proxy was used.
"""

from __future__ import annotations

import select
import socket
import threading
from typing import List, Optional, Tuple
from urllib.parse import urlsplit

_BUFFER = 64 * 1024


class ConnectProxy:
    """``with ConnectProxy() as proxy: ... proxy.url ... proxy.seen``."""

    def __init__(self, require_auth: Optional[Tuple[str, str]] = None) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        #: Request lines in arrival order: "CONNECT 127.0.0.1:1234" or "GET http://...".
        self.seen: List[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sockets: List[socket.socket] = []
        self._threads: List[threading.Thread] = []
        self._accept_thread = threading.Thread(target=self._accept_loop, name="test-proxy-accept")

    def __enter__(self) -> "ConnectProxy":
        self._accept_thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._accept_thread.join(5)
        self._server.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _close(sock)
        for thread in list(self._threads):
            thread.join(5)

    @property
    def connects(self) -> List[str]:
        return [line for line in self.seen if line.startswith("CONNECT ")]

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self._track(client)
            thread = threading.Thread(target=self._serve, args=(client,), name="test-proxy-conn")
            self._threads.append(thread)
            thread.start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)

    def _serve(self, client: socket.socket) -> None:
        upstream: Optional[socket.socket] = None
        try:
            client.settimeout(10)
            head = _read_head(client)
            if head is None:
                return
            request_line, rest = head
            method, target, version = request_line.split(" ", 2)
            with self._lock:
                self.seen.append(f"{method} {target}")
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
                self._track(upstream)
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                leftover = rest.split(b"\r\n\r\n", 1)[1]
                if leftover:
                    upstream.sendall(leftover)
            else:
                parts = urlsplit(target)
                upstream = socket.create_connection((parts.hostname, parts.port or 80), timeout=10)
                self._track(upstream)
                origin = parts.path + ("?" + parts.query if parts.query else "")
                # One request per proxied connection: the origin closes after answering.
                headers, _, body = rest.partition(b"\r\n\r\n")
                lines = [line for line in headers.split(b"\r\n")[1:] if not line.lower().startswith((b"connection:", b"proxy-"))]
                first = f"{method} {origin or '/'} {version}".encode("latin-1")
                upstream.sendall(b"\r\n".join([first, *lines, b"Connection: close", b"", b""]) + body)
            _pipe(client, upstream, self._stop)
        except (OSError, ValueError):
            pass
        finally:
            _close(client)
            if upstream is not None:
                _close(upstream)


def _read_head(sock: socket.socket) -> Optional[Tuple[str, bytes]]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(_BUFFER)
        if not chunk:
            return None
        data += chunk
    request_line = data.split(b"\r\n", 1)[0].decode("latin-1")
    return request_line, data


def _pipe(a: socket.socket, b: socket.socket, stop: threading.Event) -> None:
    """Copy bytes both ways until either side closes (or the proxy stops)."""
    peers = {a: b, b: a}
    while not stop.is_set():
        readable, _, _ = select.select([a, b], [], [], 0.2)
        for sock in readable:
            data = sock.recv(_BUFFER)
            if not data:
                return
            peers[sock].sendall(data)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
