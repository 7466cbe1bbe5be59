"""Accepting WebSocket connections: the ``on_accept`` gate, the accept itself, the pull queue.

An accept message becomes a pool task (:meth:`Acceptor.serve`): ``on_accept``
decides (True accepts; False rejects with 400; ``(status, description)``
rejects with those; a crash rejects with 502), the accept address is
connected, and the socket goes to ``on_connection`` in the same pool thread
or, without one, to a bounded queue read by ``accept_connection()``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, Mapping, Optional, Sequence, Tuple

from requests.structures import CaseInsensitiveDict

from ._rendezvous import RendezvousSet, accept_socket, choose_subprotocol, reject_socket
from ._transport import HandshakeSet, Verify
from .addresses import parse_address
from .connection import HybridConnection
from .exceptions import ConnectionClosed, HybridConnectionError, RelayTimeoutError
from .protocol import Accept

__all__ = ["ConnectionRequest", "AcceptQueue", "Acceptor", "interpret_decision"]

log = logging.getLogger(__name__)


@dataclass
class ConnectionRequest:
    """What ``on_accept`` sees about a sender's WebSocket before deciding.

    :ivar id: the connection's tracking id. :ivar headers: the sender's connect headers.
    :ivar path: the path suffix after the hybrid connection name. :ivar query: the
    application's query string. :ivar subprotocols: the subprotocols the sender offered.
    """

    id: str
    headers: "CaseInsensitiveDict[str]"
    path: str = ""
    query: str = ""
    subprotocols: Tuple[str, ...] = ()


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
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items and not self._closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise RelayTimeoutError(f"no connection accepted within {timeout} s")
                self._cond.wait(remaining)
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

    :param hooks: the listener's callback table (``on_accept``, ``on_connection``), read live.
    :param stopping: set when the listener is closing (accepts then reject 503).
    """

    def __init__(
        self,
        path: str,
        hooks: Dict[str, Optional[Callable[..., Any]]],
        sockets: RendezvousSet,
        stopping: threading.Event,
        *,
        queue_size: int,
        subprotocols: Sequence[str],
        connect_timeout: float,
        io_timeout: float,
        verify: Verify,
        proxy: Optional[str],
        handshakes: Optional[HandshakeSet] = None,
    ) -> None:
        self.path = path
        self._handshakes = handshakes
        self._hooks = hooks
        self._sockets = sockets
        self._stopping = stopping
        self.queue = AcceptQueue(max(1, queue_size))
        self.subprotocols = tuple(subprotocols)
        self._connect_timeout, self._io_timeout = connect_timeout, io_timeout
        self._verify, self._proxy = verify, proxy
        self._counts_lock = threading.Lock()  # bumped from every pool thread
        self.accepted = 0
        self.rejected = 0

    def must_queue(self) -> bool:
        """True when accepted sockets go to the pull queue (no ``on_connection``)."""
        return self._hooks.get("on_connection") is None

    def reject(self, message: Accept, status: int, description: str) -> None:
        with self._counts_lock:
            self.rejected += 1
        reject_socket(message.address, status, description, timeout=self._connect_timeout, verify=self._verify,
                      proxy=self._proxy, handshakes=self._handshakes)

    def _decide(self, message: Accept) -> Tuple[Optional[int], str]:
        hook = self._hooks.get("on_accept")
        if hook is None:
            return None, ""
        parsed = parse_address(message.address, self.path)
        headers: "CaseInsensitiveDict[str]" = CaseInsensitiveDict(message.connect_headers)
        offered = _offered(headers)
        try:
            decision = hook(ConnectionRequest(message.id, headers, parsed.suffix, parsed.query, offered))
        except Exception:  # noqa: BLE001 - a crashing gate rejects, as Microsoft's listener does
            log.exception("on_accept failed; rejecting the connection with 502")
            return 502, "Bad Gateway"
        try:
            return interpret_decision(decision)
        except (TypeError, ValueError):
            log.error("on_accept returned %r; rejecting the connection with 502", decision)
            return 502, "Bad Gateway"

    def serve(self, message: Accept, reserved: bool = False) -> None:
        """The pool task for one accept message (``reserved``: a queue place was promised to it)."""
        placed = False
        try:
            placed = self._serve(message, reserved)
        finally:
            if reserved and not placed:
                self.queue.release()

    def _serve(self, message: Accept, reserved: bool) -> bool:
        """Accept or reject; True when the socket went into the pull queue (using the reservation)."""
        status, description = self._decide(message)
        if status is None and self._stopping.is_set():
            status, description = 503, "Service Unavailable: the listener is closing"
        if status is not None:
            self.reject(message, status, description)
            return False
        subprotocol = choose_subprotocol(message.connect_headers, self.subprotocols)
        if subprotocol is None and self.subprotocols and _offered(message.connect_headers):
            # The spec: a listener accepts only if it supports the protocol the sender asked for.
            # (With no ``subprotocols`` configured the socket is accepted without one.)
            self.reject(message, 400, "Bad Request: unsupported subprotocol")
            return False
        try:
            conn = accept_socket(message.address, id=message.id, path=self.path,
                                 connect_headers=message.connect_headers, subprotocol=subprotocol,
                                 timeout=self._connect_timeout, io_timeout=self._io_timeout, verify=self._verify,
                                 proxy=self._proxy, handshakes=self._handshakes)
        except HybridConnectionError as exc:
            log.warning("could not accept a connection on %s: %s", self.path, exc)
            return False
        with self._counts_lock:
            self.accepted += 1
        if not self._sockets.track(conn):
            return False
        handler = self._hooks.get("on_connection")
        if handler is None:
            if not self.queue.put(conn, reserved=reserved):
                conn.close(1013, "listener busy", timeout=1.0)
                self._sockets.forget(conn)
            return reserved
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
        return False

    def take(self, timeout: Optional[float]) -> Optional[HybridConnection]:
        conn = self.queue.get(timeout)
        if conn is not None:
            self._sockets.forget(conn)  # the caller owns it now
        return conn

    def close(self) -> None:
        """Close the sockets nobody took."""
        for conn in self.queue.close():
            conn.close(1001, "listener closing", timeout=0.5)
            self._sockets.forget(conn)


def _offered(connect_headers: Mapping[str, str]) -> Tuple[str, ...]:
    """The subprotocols the sender offered (``Sec-WebSocket-Protocol``, any case)."""
    value = next((v for k, v in connect_headers.items() if k.lower() == "sec-websocket-protocol"), "")
    return tuple(p.strip() for p in value.split(",") if p.strip())
