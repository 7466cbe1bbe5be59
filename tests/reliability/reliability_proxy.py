"""An HTTP CONNECT proxy on 127.0.0.1 that cuts a tunnel in the middle of a body.

The listener (``proxy=``) opens its control channel and its rendezvous sockets
through it. Armed with ``cut_after(direction, nbytes)``, the first tunnel to
carry more than ``nbytes`` in that direction is cut there: the bytes up to the
limit are forwarded, then both of its sockets are reset (SO_LINGER 0), as a
dying NAT or a pulled cable would. Only large bodies cross the limit, so the
control channel (small frames) is never the one cut.
"""

from __future__ import annotations

import socket
import struct
import threading
from typing import List, Optional, Set

UP = "up"  # from the proxy's client (the listener) towards the relay
DOWN = "down"  # from the relay towards the listener


def _cut_socket(sock: socket.socket) -> None:
    """Stop a socket's traffic now: nothing more is sent and a pump blocked on it wakes up.

    The descriptor itself is closed only once both pumps are done with it (closing it under a
    pump in another thread lets the number be reused by a new socket, which the pump would then
    write to). SO_LINGER 0 makes that final close a reset.
    """
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Tunnel:
    def __init__(self, proxy: "CuttingProxy", client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.carried = {UP: 0, DOWN: 0}
        self.cut = False
        self.finished = 0
        self.lock = threading.Lock()

    def cut_now(self) -> None:
        self.cut = True
        _cut_socket(self.client)
        _cut_socket(self.upstream)

    def release(self) -> None:
        """Both pumps are done: close the descriptors."""
        for sock in (self.client, self.upstream):
            try:
                sock.close()
            except OSError:
                pass


class CuttingProxy:
    """A CONNECT proxy; :meth:`cut_after` arms a one-shot cut, :attr:`cuts` counts them."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._armed: Optional[tuple] = None
        self._tunnels: Set[_Tunnel] = set()
        self._threads: List[threading.Thread] = []
        self._closed = False
        self.cuts = 0
        self.cut_done = threading.Event()
        self._start(self._accept_loop, "test-proxy-accept")

    def cut_after(self, direction: str, nbytes: int) -> None:
        with self._lock:
            self._armed = (direction, nbytes)
            self.cut_done.clear()

    def disarm(self) -> None:
        with self._lock:
            self._armed = None

    def _start(self, target: object, name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self._start(self._open_tunnel, "test-proxy-tunnel", client)

    def _open_tunnel(self, client: socket.socket) -> None:
        client.settimeout(10)
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    raise OSError("no CONNECT")
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            host, port = line[1].rsplit(":", 1)
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        except (OSError, ValueError, IndexError):
            _cut_socket(client)
            client.close()
            return
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        client.settimeout(None)
        upstream.settimeout(None)
        tunnel = _Tunnel(self, client, upstream)
        with self._lock:
            if self._closed:
                tunnel.cut_now()
                tunnel.release()
                return
            self._tunnels.add(tunnel)
        rest = head.split(b"\r\n\r\n", 1)[1]
        if rest:
            upstream.sendall(rest)
        self._start(self._pump, "test-proxy-pump", tunnel, upstream, client, DOWN)
        self._pump(tunnel, client, upstream, UP)

    def _pump(self, tunnel: _Tunnel, source: socket.socket, target: socket.socket, direction: str) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    try:
                        target.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    return
                limit = self._limit_for(tunnel, direction, len(data))
                if limit is not None:
                    target.sendall(data[:limit])
                    self._cut(tunnel)
                    return
                target.sendall(data)
        except OSError:
            tunnel.cut_now()
        finally:
            with tunnel.lock:
                tunnel.finished += 1
                both = tunnel.finished == 2
            if both:
                tunnel.release()
                with self._lock:
                    self._tunnels.discard(tunnel)

    def _limit_for(self, tunnel: _Tunnel, direction: str, size: int) -> Optional[int]:
        """How many of the next ``size`` bytes to forward before cutting; None to forward all."""
        with self._lock:
            before = tunnel.carried[direction]
            tunnel.carried[direction] = before + size
            armed = self._armed
            if armed is None or armed[0] != direction or before + size <= armed[1]:
                return None
            self._armed = None
            return max(0, armed[1] - before)

    def _cut(self, tunnel: _Tunnel) -> None:
        tunnel.cut_now()
        with self._lock:
            self.cuts += 1
        self.cut_done.set()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            tunnels = list(self._tunnels)
            self._tunnels.clear()
        try:
            self._server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._server.close()
        for tunnel in tunnels:
            tunnel.cut_now()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(5)
