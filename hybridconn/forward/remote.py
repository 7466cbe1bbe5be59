"""RemoteForwarder: the listener side of port forwarding (azbridge ``-T``/``-R``).

One :class:`~hybridconn.HybridConnectionListener` serves every logical port
of a hybrid connection. For each relayed connection it reads the sender's
preamble (as bytes, across message boundaries), picks the target by port name
with azbridge's rule (one forwarder: any numeric name matches it; otherwise an
exact, case-sensitive match), and answers as azbridge does:

- unsupported version or mode: ``00 00 00``, then close;
- unknown port name: close without a reply;
- stream/datagram mismatch: ``00 00 FF`` (or ``00 00 01``), then close;
- otherwise ``01 00 00`` *before* connecting to the target, as C# azbridge
  does, so a refused target looks to the sender like "accepted, then closed
  at once" and its local connection is closed promptly.

Then bytes are pumped both ways (:mod:`hybridconn.forward.pump`), or, for a
UDP target (``udp_targets``, names like ``"5000U"``), datagrams are framed as
azbridge frames them (:mod:`hybridconn.forward.udp`).
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any, Dict, Mapping, Optional, Set, Tuple

from .._connection_string import path_alias
from .._deadline import Deadline
from ..connection import HybridConnection
from ..exceptions import ConnectionClosed, HybridConnectionError, RelayTimeoutError
from ..listener import HybridConnectionListener
from .preamble import (
    MODE_DATAGRAM,
    MODE_STREAM,
    PreambleParser,
    UnsupportedPreamble,
    accept_reply,
    match_port_name,
    reply_for,
    validate_port_name,
)
from .keepalive import DEFAULT_INTERVAL, Keepalive
from .pump import StreamBridge
from .sockets import connect, tune
from .udp import IDLE_TIMEOUT, DatagramTunnel, serve_remote_datagrams

__all__ = ["RemoteForwarder"]

log: logging.Logger = logging.getLogger(__name__)

Target = Tuple[str, int]

#: Default handler pool: every forwarded connection holds one pool thread for its lifetime.
DEFAULT_MAX_CONNECTIONS = 256


class RemoteForwarder:
    """Connect relayed connections on one hybrid connection to TCP targets.

    :param listener: the listener for the hybrid connection (not yet opened).
        Its ``max_workers`` bounds the concurrent forwarded connections.
    :param targets: port name -> ``(host, port)``. azbridge's default name for
        ``-T relay:22`` is ``"22"``. A host that is a path (``/run/app.sock``, or ``unix:...``)
        is a Unix domain socket (the port is ignored).
    :param preamble_timeout: seconds a sender has to send its preamble.
    :param connect_timeout: seconds to connect to a target.
    :param udp_targets: port name -> ``(host, port)`` of UDP targets (azbridge's ``-T relay:5000U``
        is named ``"5000U"``); each relayed connection in datagram mode gets its own UDP socket.
    :param udp_idle_timeout: a UDP route idle this long is closed (azbridge: 240 s).
    :param keepalive_interval: seconds between unsolicited pongs on each tunnel (azbridge's
        ``KeepAliveInterval``, 30 s), so idle tunnels survive the relay's idle drop; None: none.
    """

    def __init__(
        self,
        listener: HybridConnectionListener,
        targets: Mapping[str, Target],
        preamble_timeout: float = 30.0,
        connect_timeout: float = 30.0,
        udp_targets: Optional[Mapping[str, Target]] = None,
        udp_idle_timeout: Optional[float] = IDLE_TIMEOUT,
        keepalive_interval: Optional[float] = DEFAULT_INTERVAL,
    ) -> None:
        if not targets and not udp_targets:
            raise ValueError("a remote forwarder needs at least one target")
        self.listener = listener
        self.targets: Dict[str, Target] = {
            validate_port_name(str(name)): (str(host), int(port)) for name, (host, port) in targets.items()
        }
        self.udp_targets: Dict[str, Target] = {
            validate_port_name(str(name)): (str(host), int(port)) for name, (host, port) in (udp_targets or {}).items()
        }
        self.udp_idle_timeout = udp_idle_timeout
        self._tunnels: Set[DatagramTunnel] = set()
        self.keepalive: Keepalive = Keepalive(f"R{listener.path}", keepalive_interval)
        #: relayed connections served, bytes each way (target -> relay is up), failed ones
        #: (unknown port name, refused mode, target unreachable).
        self.counters: Dict[str, int] = {"connections": 0, "bytes_up": 0, "bytes_down": 0, "errors": 0}
        self.preamble_timeout = preamble_timeout
        self.connect_timeout = connect_timeout
        self.connections_total = 0
        self._names = list(self.targets) + [n for n in self.udp_targets if n not in self.targets]
        self._lock = threading.Lock()
        self._bridges: Set[StreamBridge] = set()
        self._pending: Set[HybridConnection] = set()
        self._closing = threading.Event()
        listener.on_connection(self._on_connection)

    @classmethod
    def from_connection_string(
        cls,
        connection_string: str,
        host: Optional[str] = None,
        port: Optional[int] = None,
        path: Optional[str] = None,
        *,
        hybrid_connection: Optional[str] = None,
        port_name: Optional[str] = None,
        targets: Optional[Mapping[str, Target]] = None,
        udp_targets: Optional[Mapping[str, Target]] = None,
        udp_idle_timeout: Optional[float] = IDLE_TIMEOUT,
        keepalive_interval: Optional[float] = DEFAULT_INTERVAL,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        preamble_timeout: float = 30.0,
        connect_timeout: float = 30.0,
        **listener_options: Any,
    ) -> "RemoteForwarder":
        """A forwarder to ``host:port`` (named ``port_name``, default the port), or to several ``targets``.

        ``path`` names the hybrid connection when the connection string has no EntityPath
        (``hybrid_connection=`` is its older name).
        """
        all_targets: Dict[str, Target] = dict(targets or {})
        if host is not None and port is not None:
            all_targets[port_name if port_name is not None else str(port)] = (host, int(port))
        listener_options.setdefault("max_workers", max_connections)
        listener = HybridConnectionListener.from_connection_string(
            connection_string, path=path_alias(path, hybrid_connection), **listener_options
        )
        return cls(listener, all_targets, preamble_timeout=preamble_timeout, connect_timeout=connect_timeout,
                   udp_targets=udp_targets, udp_idle_timeout=udp_idle_timeout, keepalive_interval=keepalive_interval)

    def __repr__(self) -> str:
        names = ", ".join(f"{name}->{host}:{port}" for name, (host, port) in self.targets.items())
        return f"<RemoteForwarder {names} active={self.active_connections}>"

    def __enter__(self) -> "RemoteForwarder":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def active_connections(self) -> int:
        with self._lock:
            return len(self._bridges)

    @property
    def active_udp_routes(self) -> int:
        """UDP routes (relayed connections in datagram mode) open now."""
        with self._lock:
            return len(self._tunnels)

    def start(self, timeout: float = 30.0) -> "RemoteForwarder":
        """Open the listener; returns once it is online."""
        self.listener.open(timeout=timeout)
        log.info("forwarding %s from the relay", ", ".join(f"{n!r} to {h}:{p}" for n, (h, p) in self.targets.items()))
        return self

    def serve_forever(self) -> None:
        """Block until :meth:`close` is called (from another thread or a signal handler)."""
        # Short waits in a loop: an unbounded wait() is not interrupted by Ctrl-C on every Python.
        while not self._closing.wait(0.5):
            pass

    def close(self, timeout: float = 10.0) -> bool:
        """End every forwarded connection and close the listener (bounded by ``timeout``).

        Returns True when everything stopped within ``timeout``; what did not is logged.
        """
        until = Deadline(timeout)
        self._closing.set()
        with self._lock:
            bridges = list(self._bridges)
            pending = list(self._pending)
            tunnels = list(self._tunnels)
        for tunnel in tunnels:
            tunnel.stop()
        for bridge in bridges:
            bridge.abort()
        for conn in pending:
            conn.abort()
        late = sum(1 for bridge in bridges if not bridge.wait(until.left()))
        if late:
            log.warning("forward: close deadline passed with %d tunnels still running", late)
        self.keepalive.close(timeout=min(2.0, until.left(floor=0.1)))
        return self.listener.close(timeout=until.left(floor=0.5)) and not late

    # ------------------------------------------------------------------ per connection

    def _on_connection(self, conn: HybridConnection) -> None:
        """Runs in a listener pool thread for the whole life of the forwarded connection."""
        with self._lock:
            if self._closing.is_set():
                conn.abort()
                return
            self.connections_total += 1
            self.counters["connections"] += 1
            name = f"R{self.connections_total}"
            self._pending.add(conn)
        try:
            self._serve(conn, name)
        except Exception:  # noqa: BLE001 - log, never leave the relayed socket open
            log.exception("forward %s: unexpected error", name)
            conn.abort()
        finally:
            with self._lock:
                self._pending.discard(conn)

    def _serve(self, conn: HybridConnection, name: str) -> None:
        parser = PreambleParser()
        until = Deadline(self.preamble_timeout)
        try:
            while parser.preamble is None:
                message = conn.recv(timeout=until.left())
                parser.feed(message.encode("utf-8") if isinstance(message, str) else message)
        except UnsupportedPreamble as exc:
            log.warning("forward %s: %s; answering 00 00 00", name, exc)
            self._count_error()
            self._answer_and_close(conn, exc.reply)
            return
        except RelayTimeoutError:
            log.warning("forward %s: no preamble within %.0f s", name, self.preamble_timeout)
            conn.close(1000, timeout=2.0)
            return
        except ConnectionClosed:
            log.debug("forward %s: closed before the preamble", name)
            conn.close(timeout=1.0)
            return
        preamble = parser.preamble
        matched = match_port_name(preamble.port_name, self._names)
        if matched is None:
            # azbridge closes without a reply; say it loudly here (azbridge issue #10).
            log.warning(
                "forward %s: unknown port name %r (this side forwards %s); closing",
                name,
                preamble.port_name,
                ", ".join(repr(n) for n in self._names),
            )
            self._count_error()
            conn.close(1000, timeout=2.0)
            return
        datagram = matched in self.udp_targets
        reply = reply_for(preamble, MODE_DATAGRAM if datagram else MODE_STREAM)
        if reply != accept_reply(preamble.mode):
            log.warning("forward %s: port %r is a %s port; the sender asked for mode %d", name, matched,
                        "UDP" if datagram else "stream", preamble.mode)
            self._count_error()
            self._answer_and_close(conn, reply)
            return
        try:
            conn.send(reply)
        except ConnectionClosed:
            return
        if datagram:
            self._serve_datagrams(conn, name, matched, parser.remainder)
            return
        sock = self._connect_target(name, matched)
        if sock is None:
            self._count_error()
            conn.close(1000, "Shutdown", timeout=2.0)  # the sender drops its local connection
            return
        self._pump(conn, sock, name, parser.remainder)

    def _pump(self, conn: HybridConnection, sock: socket.socket, name: str, initial: bytes) -> None:
        bridge = StreamBridge(sock, conn, name)
        with self._lock:
            if self._closing.is_set():
                bridge.abort()
            self._bridges.add(bridge)
            self._pending.discard(conn)
        self.keepalive.add(conn)
        try:
            bridge.run(initial_down=initial)
        finally:
            self.keepalive.discard(conn)
            with self._lock:
                self._bridges.discard(bridge)
                self.counters["bytes_up"] += bridge.bytes_up
                self.counters["bytes_down"] += bridge.bytes_down
            log.info("forward %s: closed after %d bytes up, %d down", name, bridge.bytes_up, bridge.bytes_down)

    def _serve_datagrams(self, conn: HybridConnection, name: str, port_name: str, initial: bytes) -> None:
        def register(tunnel: DatagramTunnel) -> None:
            with self._lock:
                self._pending.discard(conn)
                self._tunnels.add(tunnel)
                if self._closing.is_set():
                    tunnel.stop()

        try:
            serve_remote_datagrams(conn, name, self.udp_targets[port_name], initial, self.udp_idle_timeout, register)
        finally:
            with self._lock:
                self._tunnels = {t for t in self._tunnels if t.conn is not conn}

    def _connect_target(self, name: str, port_name: str) -> Optional[socket.socket]:
        host, port = self.targets[port_name]
        try:
            sock = connect(host, port, timeout=self.connect_timeout)
        except OSError as exc:
            log.warning("forward %s: cannot connect to %s:%d for port %r: %s", name, host, port, port_name, exc)
            return None
        sock.settimeout(None)
        tune(sock)  # no Nagle delay on TCP, as azbridge does on this side
        log.debug("forward %s: connected to %s:%d", name, host, port)
        return sock

    def _count_error(self) -> None:
        with self._lock:
            self.counters["errors"] += 1

    @staticmethod
    def _answer_and_close(conn: HybridConnection, reply: bytes) -> None:
        try:
            conn.send(reply)
        except HybridConnectionError:
            pass
        conn.close(1000, "Shutdown", timeout=2.0)
