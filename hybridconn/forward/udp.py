"""UDP forwarding over a hybrid connection, as azbridge does it (``-L 5000U:relay``, ``-R relay:host:5000U``).

- :class:`UdpLocalForwarder` (sender side) binds a UDP port. The first
  datagram from a client ``ip:port`` opens a *route*: its own relayed
  WebSocket, preamble mode 1 naming ``"<port>U"``; replies come back to that
  client. A route idle for ``idle_timeout`` (azbridge: 4 min) is closed.
- :class:`DatagramTunnel` is one route's WebSocket: each datagram is sent as
  exactly one complete frame in one message (azbridge's reader needs that),
  and received frames are handed to ``deliver``. The remote side
  (:class:`~hybridconn.forward.remote.RemoteForwarder` with ``udp_targets``)
  runs one per relayed connection, with a connected UDP socket to its target.

Datagrams over :data:`~.datagram.MAX_DATAGRAM` cannot be framed: they are
dropped, counted and logged (``DatagramTooLarge``), never truncated.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, Optional, Tuple

from .._connection_string import path_alias
from ..client import HybridConnectionClient
from ..connection import HybridConnection
from ..exceptions import ConnectionClosed, HybridConnectionError, RelayTimeoutError
from .datagram import DatagramReader, DatagramTooLarge, encode_datagram, udp_port_name
from .preamble import MODE_DATAGRAM, ReplyParser, check_reply, encode_preamble, validate_port_name

__all__ = ["DatagramTunnel", "UdpLocalForwarder", "IDLE_TIMEOUT"]

log: logging.Logger = logging.getLogger(__name__)

#: azbridge closes a UDP route idle this long (seconds).
IDLE_TIMEOUT = 240.0
_WAKEUP = 0.5  # seconds: how often loops look at close() and idleness
_QUEUE = 1024  # datagrams held per route while its WebSocket opens
_RECV = 65535 + 64


class DatagramTunnel:
    """One relayed WebSocket carrying datagrams (after the preamble), in both directions.

    :param deliver: called with each datagram that arrives (in the thread running :meth:`run`).
    :param idle_timeout: no datagram either way for this long ends the tunnel.
    """

    def __init__(self, conn: HybridConnection, name: str, deliver: Callable[[bytes], object],
                 idle_timeout: Optional[float] = IDLE_TIMEOUT) -> None:
        self.conn = conn
        self.name = name
        self.deliver = deliver
        self.idle_timeout = idle_timeout
        self.last_activity: float = time.monotonic()
        self.sent = self.received = self.dropped = 0
        self._done = threading.Event()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def send(self, payload: bytes) -> bool:
        """Send one datagram as one message; False once the tunnel is over (or it was too large)."""
        try:
            frame = encode_datagram(payload)
        except DatagramTooLarge as exc:
            self.dropped += 1
            log.warning("forward %s: %s", self.name, exc)
            return not self.done
        try:
            self.conn.send(frame)
        except HybridConnectionError as exc:
            log.debug("forward %s: send failed: %s", self.name, exc)
            self.stop()
            return False
        self.sent += 1
        self.last_activity = time.monotonic()
        return True

    def run(self, initial: bytes = b"") -> None:
        """Receive datagrams until the peer closes, the tunnel idles out, or :meth:`stop`."""
        reader = DatagramReader()
        data: Any = initial
        try:
            while not self._done.is_set():
                for payload in reader.feed(data.encode("utf-8") if isinstance(data, str) else data):
                    self.received += 1
                    self.last_activity = time.monotonic()
                    self.deliver(payload)
                data = self._next()
                if data is None:
                    return
        finally:
            self.stop()

    def _next(self) -> Optional[bytes]:
        while not self._done.is_set():
            if self.idle_timeout is not None and time.monotonic() - self.last_activity > self.idle_timeout:
                log.debug("forward %s: idle for %.0f s; closing", self.name, self.idle_timeout)
                return None
            try:
                return self.conn.recv(timeout=_WAKEUP)  # type: ignore[return-value]
            except RelayTimeoutError:
                continue
            except HybridConnectionError as exc:  # ConnectionClosed included: the route is over
                log.debug("forward %s: ended: %s", self.name, exc)
                return None
        return None

    def stop(self) -> None:
        """End the tunnel and close its WebSocket (bounded)."""
        if self._done.is_set():
            return
        self._done.set()
        self.conn.close(1000, "Shutdown", timeout=2.0)


def serve_remote_datagrams(conn: HybridConnection, name: str, target: Tuple[str, int], initial: bytes,
                           idle_timeout: Optional[float], register: Callable[[DatagramTunnel], None]) -> None:
    """The remote side of one UDP route: a connected UDP socket to ``target`` (runs in the caller)."""
    host, port = target
    try:
        info = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0]
        sock = socket.socket(info[0], socket.SOCK_DGRAM)
    except OSError as exc:
        log.warning("forward %s: cannot reach UDP target %s:%d: %s", name, host, port, exc)
        conn.close(1000, "Shutdown", timeout=2.0)
        return
    try:
        sock.connect(info[4])
        sock.settimeout(_WAKEUP)
        tunnel = DatagramTunnel(conn, name, sock.send, idle_timeout)
        register(tunnel)
        up = threading.Thread(target=_pump_socket, args=(sock, tunnel), name=f"hybridconn-forward-udp-{name}",
                              daemon=True)
        up.start()
        try:
            tunnel.run(initial)
        finally:
            tunnel.stop()
            up.join(_WAKEUP * 4)
    except OSError as exc:
        log.warning("forward %s: UDP target %s:%d failed: %s", name, host, port, exc)
        conn.close(1000, "Shutdown", timeout=2.0)
    finally:
        sock.close()


def _pump_socket(sock: socket.socket, tunnel: DatagramTunnel) -> None:
    while not tunnel.done:
        try:
            payload = sock.recv(_RECV)
        except socket.timeout:
            continue
        except OSError as exc:  # e.g. ICMP port unreachable: the target is not listening (yet)
            log.debug("forward %s: target socket: %s", tunnel.name, exc)
            continue
        tunnel.send(payload)


class UdpLocalForwarder:
    """Forward UDP datagrams on ``bind_address:port`` to a hybrid connection (azbridge ``-L 5000U:relay``).

    :param client: the sender for the hybrid connection.
    :param port: local UDP port (0 = any free port; see :attr:`address`).
    :param port_name: sent in the preamble (default ``"<port>U"``, azbridge's).
    :param idle_timeout: a client's route idle this long is closed (default 240 s, azbridge's).
    :param connect_timeout: seconds to open a route (relayed connect and preamble reply).
    """

    def __init__(self, client: HybridConnectionClient, port: int, bind_address: str = "127.0.0.1",
                 port_name: Optional[str] = None, idle_timeout: Optional[float] = IDLE_TIMEOUT,
                 connect_timeout: float = 30.0) -> None:
        self.client = client
        self.port: int = int(port)
        self.bind_address = bind_address
        self.port_name: str = validate_port_name(port_name if port_name is not None else udp_port_name(self.port))
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.routes_total = 0
        self.dropped = 0
        self._sock: Optional[socket.socket] = None
        self._thread: Optional[threading.Thread] = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._routes: Dict[Any, "_Route"] = {}
        self._owns_client = False

    @classmethod
    def from_connection_string(cls, connection_string: str, port: int, path: Optional[str] = None, *,
                               hybrid_connection: Optional[str] = None, bind_address: str = "127.0.0.1",
                               port_name: Optional[str] = None, idle_timeout: Optional[float] = IDLE_TIMEOUT,
                               connect_timeout: float = 30.0, **client_options: Any) -> "UdpLocalForwarder":
        client = HybridConnectionClient.from_connection_string(
            connection_string, path=path_alias(path, hybrid_connection), **client_options)
        forwarder = cls(client, port, bind_address, port_name, idle_timeout, connect_timeout)
        forwarder._owns_client = True
        return forwarder

    def __repr__(self) -> str:
        return f"<UdpLocalForwarder {self.bind_address}:{self.port}/udp -> {self.port_name!r} routes={self.routes}>"

    def __enter__(self) -> "UdpLocalForwarder":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def address(self) -> Tuple[str, int]:
        """The bound ``(host, port)``."""
        if self._sock is None:
            return (self.bind_address, self.port)
        host, port = self._sock.getsockname()[:2]
        return (host, port)

    @property
    def counters(self) -> Dict[str, int]:
        """Routes opened, and datagrams dropped (too large, or queued past the limit while opening)."""
        with self._lock:
            return {"routes": self.routes_total, "dropped": self.dropped}

    @property
    def routes(self) -> int:
        with self._lock:
            return len(self._routes)

    def start(self) -> "UdpLocalForwarder":
        """Bind and start reading datagrams."""
        family = socket.AF_INET6 if ":" in self.bind_address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((self.bind_address, self.port))
            sock.settimeout(_WAKEUP)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._thread = threading.Thread(target=self._read_loop, name=f"hybridconn-forward-udp-L{self.port}",
                                        daemon=True)
        self._thread.start()
        log.info("forwarding UDP %s:%d -> %r", *self.address, self.port_name)
        return self

    def close(self, timeout: float = 10.0) -> bool:
        """Stop reading, close every route; True when all threads ended within ``timeout``."""
        deadline = time.monotonic() + timeout
        self._stopping.set()
        with self._lock:
            routes = list(self._routes.values())
        for route in routes:
            route.stop()
        ok = True
        for thread in [r.thread for r in routes] + ([self._thread] if self._thread else []):
            thread.join(max(0.0, deadline - time.monotonic()))
            ok = ok and not thread.is_alive()
        if self._sock is not None:
            self._sock.close()
        if self._owns_client:
            self.client.close()
        return ok

    def _read_loop(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                payload, peer = self._sock.recvfrom(_RECV)
            except socket.timeout:
                continue
            except OSError as exc:
                if self._stopping.is_set():
                    return
                log.debug("forward UDP %d: recvfrom: %s", self.port, exc)
                continue
            self._route_for(peer).send(payload)

    def _route_for(self, peer: Any) -> "_Route":
        with self._lock:
            route = self._routes.get(peer)
            if route is None or route.over:
                self.routes_total += 1
                route = _Route(self, peer, f"U{self.port}-{self.routes_total}")
                self._routes[peer] = route
                route.thread.start()
            return route

    def _route_done(self, route: "_Route") -> None:
        with self._lock:
            if self._routes.get(route.peer) is route:
                del self._routes[route.peer]
            self.dropped += route.dropped

    def _deliver(self, peer: Any) -> Callable[[bytes], None]:
        def deliver(payload: bytes) -> None:
            if self._sock is not None:
                try:
                    self._sock.sendto(payload, peer)
                except OSError as exc:
                    log.debug("forward UDP %d: sendto %s: %s", self.port, peer, exc)
        return deliver


class _Route:
    """One client's datagrams: a relayed WebSocket opened on its first datagram."""

    def __init__(self, owner: UdpLocalForwarder, peer: Any, name: str) -> None:
        self.owner = owner
        self.peer = peer
        self.name = name
        self.tunnel: Optional[DatagramTunnel] = None
        self.over = False
        self.dropped = 0
        self._queue: Deque[bytes] = deque()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"hybridconn-forward-udp-{name}", daemon=True)

    def send(self, payload: bytes) -> None:
        with self._lock:
            tunnel = self.tunnel
            if tunnel is None:
                if len(self._queue) < _QUEUE:
                    self._queue.append(payload)
                else:
                    self.dropped += 1
                return
        if not tunnel.send(payload):
            self.over = True

    def stop(self) -> None:
        with self._lock:
            self.over = True
            tunnel = self.tunnel
        if tunnel is not None:
            tunnel.stop()

    def _run(self) -> None:
        try:
            opened = self._open()
            if opened is None:
                return
            tunnel, remainder = opened
            # Datagrams that came while the tunnel opened go first. New ones keep joining the queue
            # until it is empty; only then does send() use the tunnel directly (setting it before
            # the flush let a new datagram overtake the queued ones).
            while True:
                with self._lock:
                    queued, self._queue = list(self._queue), deque()
                    if not queued:
                        self.tunnel = tunnel
                        if self.over:
                            tunnel.stop()
                        break
                for payload in queued:
                    tunnel.send(payload)
            tunnel.run(remainder)
            self.dropped += tunnel.dropped
        except Exception:  # noqa: BLE001 - a route must never kill the forwarder quietly
            log.exception("forward %s: unexpected error", self.name)
        finally:
            self.over = True
            self.owner._route_done(self)

    def _open(self) -> Optional[Tuple[DatagramTunnel, bytes]]:
        owner = self.owner
        try:
            conn = owner.client.connect(timeout=owner.connect_timeout)
        except HybridConnectionError as exc:
            log.warning("forward %s: cannot open a relayed connection for %s: %s", self.name, self.peer, exc)
            return None
        deadline = time.monotonic() + owner.connect_timeout
        try:
            conn.send(encode_preamble(owner.port_name, MODE_DATAGRAM))
            parser = ReplyParser()
            while parser.reply is None:
                message = conn.recv(timeout=max(0.01, deadline - time.monotonic()))
                parser.feed(message.encode("utf-8") if isinstance(message, str) else message)
            check_reply(parser.reply, MODE_DATAGRAM)
        except ConnectionClosed as exc:
            log.warning("forward %s: the remote side closed without accepting UDP port %r (unknown port name?): %s",
                        self.name, owner.port_name, exc)
            conn.close(timeout=1.0)
            return None
        except HybridConnectionError as exc:  # rejected, timed out, broken
            log.warning("forward %s: UDP port %r: %s", self.name, owner.port_name, exc)
            conn.close(1000, timeout=2.0)
            return None
        return DatagramTunnel(conn, self.name, owner._deliver(self.peer), owner.idle_timeout), parser.remainder
