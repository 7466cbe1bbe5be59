"""An HTTP proxy on 127.0.0.1 for tests: CONNECT tunnels, absolute-form forwarding, and faults on demand.

websocket-client always tunnels through ``CONNECT host:port`` (for ``ws://`` too); requests
tunnels for ``https://`` and sends ``GET http://host/...`` to the proxy for ``http://``. Both
are served, and every request line is recorded (:attr:`ConnectProxy.seen`) so a test can prove
the proxy was used.

Two faults, for the listener's tests:

- :meth:`ConnectProxy.cut_after` arms a one-shot cut: the first link to carry more than
  ``nbytes`` in one direction forwards the bytes up to the limit, then both its sockets are
  reset (SO_LINGER 0), as a dying NAT or a pulled cable would. Only large bodies cross the
  limit, so a control channel (small frames) is never the one cut.
- :meth:`ConnectProxy.hold` makes new tunnels open but lead nowhere: a WebSocket handshake
  through one waits for an answer that never comes (a relay that took the connection and went
  silent). Tunnels opened before keep working.

Each link is pumped by two threads, one per direction; the last one to finish closes both
sockets, so no descriptor is closed under a pump that still uses it (the number could be
reused by a new socket, which the pump would then write to).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Dict, List, Optional, Set, Tuple
from urllib.parse import urlsplit

from tests.support.sockets import READ_SIZE, read_http_head, shut, shut_with_reset, shut_write

UP = "up"  # from the proxy's client (a listener or sender) towards the relay
DOWN = "down"  # from the relay towards the proxy's client

_ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"
_CLOSE_WAIT = 5.0  # seconds close() waits for the proxy's threads


class _Link:
    """A client and its upstream socket; ``carried`` counts bytes per direction for :meth:`ConnectProxy.cut_after`."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.carried: Dict[str, int] = {UP: 0, DOWN: 0}
        self._pumps_running = 2
        self._lock = threading.Lock()

    def reset(self) -> None:
        shut_with_reset(self.client)
        shut_with_reset(self.upstream)

    def pump_finished(self) -> bool:
        """One pump is done; True for the last one (which closes the sockets)."""
        with self._lock:
            self._pumps_running -= 1
            return self._pumps_running == 0


class ConnectProxy:
    """``with ConnectProxy() as proxy: ... proxy.url ... proxy.seen``; faults: :meth:`cut_after`, :meth:`hold`."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)  # the accept loop looks at _closed this often
        self.port: int = self._server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        #: Request lines in arrival order: "CONNECT 127.0.0.1:1234" or "GET http://...".
        self.seen: List[str] = []
        #: Links cut by :meth:`cut_after` so far; ``cut_done`` is set just after each cut.
        self.cuts = 0
        self.cut_done = threading.Event()
        #: Released once per tunnel opened while holding (see :meth:`hold`).
        self.held = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._closed = False
        self._holding = threading.Event()
        self._armed: Optional[Tuple[str, int]] = None
        self._sockets: Set[socket.socket] = set()
        self._threads: List[threading.Thread] = []
        self._start(self._accept_loop, "test-proxy-accept")

    def __enter__(self) -> "ConnectProxy":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def connects(self) -> List[str]:
        return [line for line in self.seen if line.startswith("CONNECT ")]

    # ------------------------------------------------------------------ faults

    def cut_after(self, direction: str, nbytes: int) -> None:
        """Cut the first link that carries more than ``nbytes`` in ``direction`` (:data:`UP` or :data:`DOWN`)."""
        with self._lock:
            self._armed = (direction, nbytes)
            self.cut_done.clear()

    def disarm(self) -> None:
        with self._lock:
            self._armed = None

    def hold(self) -> None:
        """From now on new tunnels answer 200 and then carry nothing."""
        self._holding.set()

    # ------------------------------------------------------------------ serving

    def _start(self, target: object, name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _keep(self, sock: socket.socket) -> bool:
        """Track a socket so close() can wake whoever is blocked on it; False (and closed) once closing."""
        with self._lock:
            if not self._closed:
                self._sockets.add(sock)
                return True
        sock.close()
        return False

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        sock.close()

    def _accept_loop(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
            try:
                client, _ = self._server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if self._keep(client):
                self._start(self._serve, "test-proxy-conn", client)

    def _serve(self, client: socket.socket) -> None:
        try:
            client.settimeout(10)
            head = read_http_head(client)
            if head is None:
                raise OSError("no request")
            request_line, data = head
            method, target, version = request_line.split(" ", 2)
            with self._lock:
                self.seen.append(f"{method} {target}")
            if method == "CONNECT" and self._holding.is_set():
                self._hold(client)
                return
            upstream = self._open_upstream(client, method, target, version, data)
        except (OSError, ValueError):
            shut(client)
            self._close(client)
            return
        client.settimeout(None)
        upstream.settimeout(None)
        link = _Link(client, upstream)
        self._start(self._pump, "test-proxy-pump", link, upstream, client, DOWN)
        self._pump(link, client, upstream, UP)

    def _open_upstream(
        self, client: socket.socket, method: str, target: str, version: str, data: bytes
    ) -> socket.socket:
        """Connect to where the request goes and pass it on (CONNECT: answer 200 and forward what followed)."""
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            address = (host.strip("[]"), int(port))
        else:
            parts = urlsplit(target)
            address = (parts.hostname or "", parts.port or 80)
        upstream = socket.create_connection(address, timeout=10)
        if not self._keep(upstream):
            raise OSError("the proxy is closing")
        try:
            if method == "CONNECT":
                client.sendall(_ESTABLISHED)
                upstream.sendall(data.split(b"\r\n\r\n", 1)[1])
            else:
                upstream.sendall(_origin_form(method, target, version, data))
        except OSError:
            self._close(upstream)
            raise
        return upstream

    def _hold(self, client: socket.socket) -> None:
        """A tunnel that opens and then swallows what the client sends, until the client or close() ends it."""
        try:
            client.sendall(_ESTABLISHED)
            self.held.release()
            client.settimeout(None)
            while client.recv(READ_SIZE):
                pass
        except OSError:
            pass
        finally:
            self._close(client)

    def _pump(self, link: _Link, source: socket.socket, target: socket.socket, direction: str) -> None:
        try:
            while True:
                data = source.recv(READ_SIZE)
                if not data:
                    shut_write(target)
                    return
                limit = self._cut_limit(link, direction, len(data))
                if limit is not None:
                    target.sendall(data[:limit])
                    self._cut(link)
                    return
                target.sendall(data)
        except OSError:
            link.reset()
        finally:
            if link.pump_finished():
                self._close(link.client)
                self._close(link.upstream)

    def _cut_limit(self, link: _Link, direction: str, size: int) -> Optional[int]:
        """How many of the next ``size`` bytes to forward before cutting; None to forward all."""
        with self._lock:
            before = link.carried[direction]
            link.carried[direction] = before + size
            armed = self._armed
            if armed is None or armed[0] != direction or before + size <= armed[1]:
                return None
            self._armed = None
            return max(0, armed[1] - before)

    def _cut(self, link: _Link) -> None:
        link.reset()
        with self._lock:
            self.cuts += 1
        self.cut_done.set()

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Stop accepting, end every tunnel, and wait (bounded) for the proxy's threads."""
        with self._lock:
            self._closed = True
            sockets = list(self._sockets)
        for sock in sockets:
            shut(sock)
        deadline = time.monotonic() + _CLOSE_WAIT
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._server.close()
        with self._lock:
            leftovers, self._sockets = list(self._sockets), set()
        for sock in leftovers:  # only if a thread outlived the wait
            sock.close()


def _origin_form(method: str, target: str, version: str, data: bytes) -> bytes:
    """An absolute-form request (``GET http://host/path``) rewritten for the origin, one request per connection."""
    parts = urlsplit(target)
    origin = parts.path + ("?" + parts.query if parts.query else "")
    headers, _, body = data.partition(b"\r\n\r\n")
    lines = [line for line in headers.split(b"\r\n")[1:] if not line.lower().startswith((b"connection:", b"proxy-"))]
    first = f"{method} {origin or '/'} {version}".encode("latin-1")
    return b"\r\n".join([first, *lines, b"Connection: close", b"", b""]) + body
