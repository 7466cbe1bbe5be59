"""LocalForwarder: the sender side of port forwarding (azbridge ``-L``).

It listens on a local TCP port. Each accepted connection gets its own relayed
WebSocket (``HybridConnectionClient.connect()``), no path suffix and no
subprotocol, as azbridge opens it. On it we write the v1.0 preamble naming the
remote port, wait for the listener's 3-byte reply (no payload is sent before
it), then pump bytes both ways (:mod:`hybridconn.forward.pump`). A rejected
preamble, an unreachable relay or a missing listener closes the local
connection at once, and is logged as a warning.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any, Dict, Optional, Set, Tuple

from .._connection_string import path_alias
from .._deadline import Deadline
from ..client import HybridConnectionClient
from ..connection import HybridConnection
from ..exceptions import ConnectionClosed, HybridConnectionError, RelayTimeoutError
from .preamble import MODE_STREAM, PreambleRejected, ReplyParser, check_reply, encode_preamble, validate_port_name
from .keepalive import DEFAULT_INTERVAL, Keepalive
from .pump import StreamBridge
from .sockets import listen, remove_socket_file, socket_path, tune

__all__ = ["LocalForwarder"]

log: logging.Logger = logging.getLogger(__name__)

_ACCEPT_WAKEUP = 0.5  # seconds; bounds how long close() waits for the accept loop


class LocalForwarder:
    """Forward TCP connections on ``bind_address:port`` to a hybrid connection.

    :param client: the sender for the hybrid connection.
    :param port: local TCP port (0 = any free port; see :attr:`address`).
    :param bind_address: local address to listen on (default ``127.0.0.1``), or a Unix domain
        socket path (``/run/app.sock``; ``port`` is then ignored).
    :param port_name: the logical port name sent in the preamble. Default: the
        port as given (azbridge's default); a numeric name reaches a remote side
        that has a single forwarder whatever its port.
    :param connect_timeout: seconds for the relayed connect and the preamble reply.
    :param keepalive_interval: seconds between the unsolicited pongs sent on each tunnel, so an
        idle one survives the relay's idle drop (azbridge's ``KeepAliveInterval``, 30 s); None: none.

    Use as a context manager, or call :meth:`start` and :meth:`close`.
    """

    def __init__(
        self,
        client: HybridConnectionClient,
        port: int,
        bind_address: str = "127.0.0.1",
        port_name: Optional[str] = None,
        connect_timeout: float = 30.0,
        backlog: int = 128,
        keepalive_interval: Optional[float] = DEFAULT_INTERVAL,
    ) -> None:
        self.client = client
        self.port: int = int(port)
        self.bind_address = bind_address
        default_name = socket_path(bind_address) or str(self.port)  # azbridge names a socket by its path
        self.port_name: str = validate_port_name(port_name if port_name is not None else default_name)
        self.connect_timeout = connect_timeout
        self.backlog = backlog
        self.connections_total = 0
        self._server: Optional[socket.socket] = None
        self._accept_thread: Optional[threading.Thread] = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._sessions: Set["_LocalSession"] = set()
        self._tag = str(port)
        self._owns_client = False
        self.keepalive: Keepalive = Keepalive(f"L{port}", keepalive_interval)
        #: connections served, bytes each way (socket -> relay is up), connections that failed to open.
        self.counters: Dict[str, int] = {"connections": 0, "bytes_up": 0, "bytes_down": 0, "errors": 0}

    @classmethod
    def from_connection_string(
        cls,
        connection_string: str,
        port: int,
        path: Optional[str] = None,
        *,
        hybrid_connection: Optional[str] = None,
        bind_address: str = "127.0.0.1",
        port_name: Optional[str] = None,
        connect_timeout: float = 30.0,
        keepalive_interval: Optional[float] = DEFAULT_INTERVAL,
        **client_options: Any,
    ) -> "LocalForwarder":
        """A forwarder whose client comes from a connection string (EntityPath optional if ``path`` is given).

        ``hybrid_connection=`` is the older name of ``path``.
        """
        client = HybridConnectionClient.from_connection_string(
            connection_string, path=path_alias(path, hybrid_connection), **client_options
        )
        forwarder = cls(client, port, bind_address=bind_address, port_name=port_name, connect_timeout=connect_timeout,
                        keepalive_interval=keepalive_interval)
        forwarder._owns_client = True
        return forwarder

    def __repr__(self) -> str:
        return (
            f"<LocalForwarder {self.bind_address}:{self.port} -> {self.port_name!r} active={self.active_connections}>"
        )

    def __enter__(self) -> "LocalForwarder":
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ lifecycle

    @property
    def address(self) -> Tuple[str, int]:
        """The bound ``(host, port)``; the real port when 0 was asked for."""
        if self._server is None or socket_path(self.bind_address) is not None:
            return (self.bind_address, self.port)
        host, port = self._server.getsockname()[:2]
        return (host, port)

    @property
    def active_connections(self) -> int:
        with self._lock:
            return len(self._sessions)

    def start(self) -> "LocalForwarder":
        """Bind and start accepting; returns once the port is listening."""
        if self._server is not None:
            raise RuntimeError("the forwarder is already started")
        server = listen(self.bind_address, self.port, self.backlog)
        server.settimeout(_ACCEPT_WAKEUP)
        self._server = server
        self._tag = str(self.address[1]) if socket_path(self.bind_address) is None else "unix"
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"hybridconn-forward-L{self._tag}-accept", daemon=True
        )
        self._accept_thread.start()
        log.info("forwarding %s:%d to port %r over the relay", self.address[0], self.address[1], self.port_name)
        return self

    def serve_forever(self) -> None:
        """Block until :meth:`close` is called (from another thread or a signal handler)."""
        if self._server is None:
            self.start()
        # Short waits in a loop: an unbounded wait() is not interrupted by Ctrl-C on every Python.
        while not self._stopping.wait(0.5):
            pass

    def close(self, timeout: float = 10.0) -> bool:
        """Stop accepting, end every forwarded connection, and wait for the threads (bounded).

        Returns True when every thread ended within ``timeout``; what did not is logged.
        """
        until = Deadline(timeout)
        self._stopping.set()
        stopped = self._accept_thread is None or until.join(self._accept_thread)
        server, self._server = self._server, None
        if server is not None:
            server.close()
            path = socket_path(self.bind_address)
            if path is not None:
                remove_socket_file(path)
        with self._lock:
            sessions = list(self._sessions)
        for session in sessions:
            session.abort()
        late = [session.name for session in sessions if not until.join(session.thread)]
        self.keepalive.close(timeout=min(2.0, until.left(floor=0.1)))
        if self._owns_client:
            self.client.close()
        if late or not stopped:
            log.warning("forward %s: close deadline passed; still running: %s", self.port_name,
                        ", ".join(late + ([] if stopped else ["the accept thread"])))
        return stopped and not late

    # ------------------------------------------------------------------ accepting

    def _accept_loop(self) -> None:
        server = self._server
        assert server is not None
        while not self._stopping.is_set():
            try:
                sock, peer = server.accept()
            except socket.timeout:
                continue
            except OSError as exc:
                if not self._stopping.is_set():
                    log.warning("forward %s: accept failed: %s", self._tag, exc)
                return
            self.connections_total += 1
            session = _LocalSession(self, sock, peer, self.connections_total)
            with self._lock:
                if self._stopping.is_set():
                    sock.close()
                    return
                self._sessions.add(session)
            session.thread.start()

    def _session_done(self, session: "_LocalSession") -> None:
        bridge = session.bridge
        with self._lock:
            self._sessions.discard(session)
            self.counters["connections"] += 1
            if bridge is None:
                self.counters["errors"] += 0 if session.aborted else 1
            else:
                self.counters["bytes_up"] += bridge.bytes_up
                self.counters["bytes_down"] += bridge.bytes_down
        if bridge is not None:
            log.info("forward %s: closed after %d bytes up, %d down", session.name, bridge.bytes_up, bridge.bytes_down)


class _LocalSession:
    """One accepted TCP connection: relay connect, preamble, then the pumps."""

    def __init__(self, owner: LocalForwarder, sock: socket.socket, peer: Any, number: int) -> None:
        self.owner = owner
        self.sock = sock
        self.peer = peer
        self.name = f"L{owner._tag}-{number}"
        self.conn: Optional[HybridConnection] = None
        self.bridge: Optional[StreamBridge] = None
        self._aborted = threading.Event()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"hybridconn-forward-{self.name}", daemon=True)

    @property
    def aborted(self) -> bool:
        return self._aborted.is_set()

    def abort(self) -> None:
        with self._lock:
            self._aborted.set()
            conn, bridge = self.conn, self.bridge
        if bridge is not None:
            bridge.abort()
        elif conn is not None:
            conn.abort()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _run(self) -> None:
        try:
            self.sock.settimeout(None)
            tune(self.sock)
            remainder = self._open()
            if remainder is None:
                return
            with self._lock:
                if self._aborted.is_set():
                    return
                assert self.conn is not None
                self.bridge = StreamBridge(self.sock, self.conn, self.name)
            self.owner.keepalive.add(self.conn)
            try:
                self.bridge.run(initial_down=remainder)
            finally:
                self.owner.keepalive.discard(self.conn)
        except Exception:  # noqa: BLE001 - a session must never kill the process quietly
            log.exception("forward %s: unexpected error", self.name)
        finally:
            if self.bridge is None:  # never got to pumping: drop the local connection
                if self.conn is not None:
                    if self._aborted.is_set():
                        self.conn.abort()
                    else:
                        self.conn.close(1000, timeout=2.0)
                self.sock.close()
            self.owner._session_done(self)

    def _open(self) -> Optional[bytes]:
        """Connect through the relay and exchange the preamble; the bytes after the reply, or None."""
        owner = self.owner
        until = Deadline(owner.connect_timeout)
        try:
            conn = owner.client.connect(timeout=owner.connect_timeout)
        except HybridConnectionError as exc:
            log.warning("forward %s: cannot open a relayed connection for %s: %s", self.name, self.peer, exc)
            return None
        with self._lock:
            self.conn = conn
            if self._aborted.is_set():
                return None
        try:
            conn.send(encode_preamble(owner.port_name, MODE_STREAM))
            parser = ReplyParser()
            while parser.reply is None:
                message = conn.recv(timeout=until.left())
                parser.feed(message.encode("utf-8") if isinstance(message, str) else message)
            check_reply(parser.reply, MODE_STREAM)
        except ConnectionClosed as exc:
            if not self._aborted.is_set():
                log.warning(
                    "forward %s: the remote side closed without accepting port name %r (unknown port name?): %s",
                    self.name,
                    owner.port_name,
                    exc,
                )
            return None
        except PreambleRejected as exc:
            log.warning("forward %s: port %r rejected: %s", self.name, owner.port_name, exc)
            return None
        except RelayTimeoutError:
            log.warning("forward %s: no preamble reply within %.0f s", self.name, owner.connect_timeout)
            return None
        except HybridConnectionError as exc:
            log.warning("forward %s: preamble exchange failed: %s", self.name, exc)
            return None
        log.debug("forward %s: %s connected through the relay (id %s)", self.name, self.peer, conn.id)
        return parser.remainder

