"""Accepting WebSocket connections: the ``on_accept`` gate, the accept or reject handshake, the pull queue.

An accept message becomes a pool task (:meth:`Acceptor.serve`): ``on_accept``
decides (True accepts; False rejects with 400; ``(status, description)``
rejects with those; a crash rejects with 502), the accept address is
connected, and the socket goes to ``on_connection`` in the same pool thread
or, without one, to the bounded :class:`AcceptQueue` read by
``accept_connection()``. Rejecting is a handshake on the accept address with
``sb-hc-statusCode``/``sb-hc-statusDescription`` that succeeds by failing with 410.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Deque, Mapping, Optional, Protocol, Sequence, Tuple

from .._deadline import Deadline
from .._headermap import HeaderMap
from .._keepalive import PongTimer
from .._transport import Dialer
from ..addresses import parse_address, redact_url, reject_url
from ..connection import MAX_MESSAGE_SIZE, HybridConnection
from ..exceptions import ConnectionClosed, HandshakeError, HybridConnectionError, RelayTimeoutError
from ..protocol import Accept, header_value, parse_subprotocols
from .admission import CLOSING, Admission, Refusal
from .hooks import Hooks
from .polled import PolledConnection
from .stats import Counters

if TYPE_CHECKING:  # pragma: no cover
    from .multiplex import Multiplexer

__all__ = [
    "ConnectionRequest", "AcceptQueue", "Acceptor", "interpret_decision", "choose_subprotocol", "offered_subprotocols",
    "SocketTracker", "reject_socket",
]

log = logging.getLogger(__name__)


@dataclass
class ConnectionRequest:
    """What ``on_accept`` sees about a sender's WebSocket before deciding.

    :ivar id: the connection's tracking id.
    :ivar headers: the sender's connect headers.
    :ivar path: the path suffix after the hybrid connection name.
    :ivar query: the application's query string.
    :ivar subprotocols: the subprotocols the sender offered.
    """

    id: str
    headers: HeaderMap
    path: str = ""
    query: str = ""
    subprotocols: Tuple[str, ...] = ()


class SocketTracker(Protocol):
    """Who remembers open sockets so the listener's close() can close them (the rendezvous pool)."""

    def track(self, conn: HybridConnection) -> bool:
        """Remember ``conn``; False (and ``conn`` closed) when shutting down."""

    def forget(self, conn: HybridConnection) -> None:
        """``conn`` is closed, or someone else owns it now."""


def interpret_decision(decision: Any) -> Tuple[Optional[int], str]:
    """``on_accept``'s answer as (None, "") to accept, or (status, description) to reject."""
    if isinstance(decision, tuple) and len(decision) == 2:
        return int(decision[0]), str(decision[1])
    if decision is True:
        return None, ""
    if isinstance(decision, int) and not isinstance(decision, bool):
        return decision, "Rejected"
    if decision:
        return None, ""
    return 400, "Bad Request"


def offered_subprotocols(connect_headers: Mapping[str, str]) -> Tuple[str, ...]:
    """The subprotocols the sender offered (``Sec-WebSocket-Protocol``, any case)."""
    return parse_subprotocols(header_value(connect_headers, "Sec-WebSocket-Protocol"))


def choose_subprotocol(connect_headers: Mapping[str, str], supported: Optional[Sequence[str]]) -> Optional[str]:
    """The first subprotocol the sender offered that the application supports."""
    if not supported:
        return None
    wanted = {s.lower() for s in supported}
    return next((item for item in offered_subprotocols(connect_headers) if item.lower() in wanted), None)


def reject_socket(dialer: Dialer, address: str, status: int, description: str) -> bool:
    """Refuse a sender with ``status``; True when the relay confirmed (410)."""
    where = redact_url(address.split("?")[0])
    try:
        ws = dialer.open(reject_url(address, status, description), what="reject")
    except HandshakeError as exc:
        if exc.status_code == 410:
            return True
        log.warning("rejecting a connection on %s failed: %s", where, exc)
        return False
    except HybridConnectionError as exc:
        log.warning("rejecting a connection on %s failed: %s", where, exc)
        return False
    log.warning("the relay upgraded a reject handshake instead of answering 410; closing it")
    HybridConnection(ws).close(1000, "", timeout=1.0)
    return False


class AcceptQueue:
    """Accepted sockets waiting for ``accept_connection()``; bounded."""

    def __init__(self, maxsize: int) -> None:
        self._items: Deque[HybridConnection] = deque()
        self._cond = threading.Condition()
        self._maxsize, self._closed = maxsize, False
        # Places promised to accepts still in their handshake: counting them is what keeps
        # the bound exact when a second accept arrives before the first socket is queued.
        self._reserved = 0

    def full(self) -> bool:
        with self._cond:
            return len(self._items) + self._reserved >= self._maxsize

    def reserve(self) -> bool:
        """Promise a place to an accept about to start; False when none is left."""
        with self._cond:
            if self._closed or len(self._items) + self._reserved >= self._maxsize:
                return False
            self._reserved += 1
            return True

    def release(self) -> None:
        """Give back a place promised by :meth:`reserve` that will not be used."""
        with self._cond:
            self._reserved = max(0, self._reserved - 1)

    def put(self, conn: HybridConnection, reserved: bool = False) -> bool:
        with self._cond:
            if reserved:
                self._reserved = max(0, self._reserved - 1)
            if self._closed or len(self._items) + self._reserved >= self._maxsize:
                return False
            self._items.append(conn)
            self._cond.notify()
            return True

    def get(self, timeout: Optional[float]) -> Optional[HybridConnection]:
        """The next socket; None once closed; RelayTimeoutError after ``timeout``."""
        until = Deadline(timeout)
        with self._cond:
            while not self._items and not self._closed:
                if until.expired:
                    raise RelayTimeoutError(f"no connection accepted within {timeout} s")
                self._cond.wait(until.remaining())
            return self._items.popleft() if self._items else None

    def close(self) -> Sequence[HybridConnection]:
        """Stop taking sockets; wake every waiter; return the ones never taken."""
        with self._cond:
            self._closed = True
            items, self._items = list(self._items), deque()
            self._cond.notify_all()
            return items


class Acceptor:
    """Runs the accept side for one listener.

    :param hooks: the listener's callbacks (``on_accept``, ``on_connection``), read live.
    :param sockets: tracks accepted sockets until they close or ``accept_connection()`` takes them.
    :param admission: says whether the listener is closing (an accept then rejects 503).
    :param keepalive_interval: seconds between the unsolicited Pongs sent on every accepted socket
        (``on_connection``, multiplexed or pulled), so an idle one survives the relay's idle drop;
        None: none. One timer thread serves them all.
    """

    def __init__(self, path: str, dialer: Dialer, hooks: Hooks, sockets: SocketTracker, admission: Admission, *,
                 queue_size: int, subprotocols: Sequence[str], counters: Counters,
                 max_message_size: Optional[int] = MAX_MESSAGE_SIZE,
                 multiplexer: Optional["Multiplexer"] = None, keepalive_interval: Optional[float] = None,
                 name: str = "") -> None:
        self.path = path
        self.keepalive_interval = keepalive_interval
        self.keepalive = PongTimer(f"hybridconn-listener-keepalive-{name or path}")
        self.max_message_size = max_message_size
        self._dialer = dialer
        self._hooks = hooks
        self._sockets = sockets
        self._admission = admission
        self._counters = counters
        self.queue = AcceptQueue(max(1, queue_size))
        self.subprotocols = tuple(subprotocols)
        self._multiplexer = multiplexer

    @property
    def pulls(self) -> bool:
        """True when accepted sockets go to the pull queue (no ``on_connection``)."""
        return self._hooks.on_connection is None and self._hooks.on_message is None

    @property
    def multiplexes(self) -> bool:
        """True when accepted sockets go to the multiplexer (``on_message`` is set)."""
        return self._multiplexer is not None and self._hooks.on_message is not None

    def reject(self, message: Accept, refusal: Refusal) -> None:
        self._counters.bump("rejected")
        reject_socket(self._dialer, message.address, refusal.status, refusal.text)

    def serve(self, message: Accept, reserved: bool = False) -> None:
        """The pool task for one accept message (``reserved``: a queue place was promised to it)."""
        placed = False
        try:
            placed = self._serve(message, reserved)
        finally:
            if reserved and not placed:
                self.queue.release()

    def _decide(self, message: Accept) -> Optional[Refusal]:
        hook = self._hooks.on_accept
        if hook is not None:
            parsed = parse_address(message.address, self.path)
            headers = HeaderMap(message.connect_headers)
            offered = offered_subprotocols(headers)
            try:
                decision = hook(ConnectionRequest(message.id, headers, parsed.suffix, parsed.query, offered))
                status, description = interpret_decision(decision)
            except Exception:  # noqa: BLE001 - a crashing gate rejects, as Microsoft's listener does
                log.exception("on_accept failed or answered something unusable; rejecting the connection with 502")
                return Refusal(502, "Bad Gateway")
            if status is not None:
                return Refusal(status, description)
        if self._admission.closing:
            return CLOSING
        if self.subprotocols and offered_subprotocols(message.connect_headers) and self._subprotocol(message) is None:
            # The spec: a listener accepts only if it supports the protocol the sender asked for.
            # (With no ``subprotocols`` configured the socket is accepted without one.)
            return Refusal(400, "Bad Request: unsupported subprotocol")
        return None

    def _subprotocol(self, message: Accept) -> Optional[str]:
        return choose_subprotocol(message.connect_headers, self.subprotocols)

    def _serve(self, message: Accept, reserved: bool) -> bool:
        """Accept or reject; True when the socket went into the pull queue (using the reservation)."""
        refusal = self._decide(message)
        if refusal is not None:
            self.reject(message, refusal)
            return False
        multiplexes = self.multiplexes
        conn = self._accept(message, multiplexes)
        if conn is None or not self._sockets.track(conn):
            return False
        self.keepalive.add(conn, self.keepalive_interval)
        if multiplexes and isinstance(conn, PolledConnection):
            if self._multiplexer is None or not self._multiplexer.add(conn):
                conn.close(1001, "listener closing", timeout=1.0)
                self._sockets.forget(conn)
            return False
        handler = self._hooks.on_connection
        if handler is None:
            if not self.queue.put(conn, reserved=reserved):
                conn.close(1013, "listener busy", timeout=1.0)
                self._sockets.forget(conn)
            return reserved
        self._run_handler(handler, conn)
        return False

    def _accept(self, message: Accept, polled: bool = False) -> Optional[HybridConnection]:
        subprotocol = self._subprotocol(message)
        try:
            ws = self._dialer.open(message.address, what="accept", subprotocols=[subprotocol] if subprotocol else None)
        except HybridConnectionError as exc:
            log.warning("could not accept a connection on %s: %s", self.path, exc)
            return None
        self._counters.bump("accepted")
        parsed = parse_address(message.address, self.path)
        kind = PolledConnection if polled else HybridConnection
        return kind(ws, id=message.id, headers=dict(message.connect_headers), path=parsed.suffix,
                    query=parsed.query, subprotocol=subprotocol, io_timeout=self._dialer.io_timeout,
                    max_message_size=self.max_message_size)

    def _run_handler(self, handler: Any, conn: HybridConnection) -> None:
        try:
            handler(conn)
        except ConnectionClosed as exc:
            log.debug("connection %s closed under its handler: %s", conn.id, exc)
        except Exception:  # noqa: BLE001 - a handler crash closes its socket with 1011
            log.exception("on_connection handler failed for connection %s", conn.id)
            conn.close(1011, "handler error", timeout=2.0)
        finally:
            if not conn.closed:
                conn.close(1000, "", timeout=2.0)
            self._sockets.forget(conn)

    def take(self, timeout: Optional[float]) -> Optional[HybridConnection]:
        conn = self.queue.get(timeout)
        if conn is not None:
            self._sockets.forget(conn)  # the caller owns it now
        return conn

    def close(self, until: Deadline) -> None:
        """Stop the keep-alive; close the sockets nobody took, within ``until`` (the rest are aborted)."""
        self.keepalive.close(timeout=min(1.0, until.left()))
        for conn in self.queue.close():
            left = until.left()
            if left <= 0.05:
                conn.abort()
            else:
                conn.close(1001, "listener closing", timeout=min(left, 0.5))
            self._sockets.forget(conn)
