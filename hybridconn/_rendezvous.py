"""Rendezvous sockets: accepting or rejecting WebSockets, and request sockets kept open.

- :func:`accept_socket` connects an accept address and wraps it in a
  :class:`HybridConnection`; :func:`reject_socket` refuses a sender with a
  status by connecting the reject URL, a handshake that succeeds by failing
  with 410.
- :class:`RendezvousSet` keeps the request rendezvous sockets: one reader
  thread (``hybridconn-rendezvous-<path>``) per socket reads the sender's
  requests as they come, for as long as either side keeps it open (or until
  it has been idle for ``idle_timeout``), and hands each one on; a broken
  request is answered 400, a body over ``max_body`` 413. It also tracks
  accepted WebSockets and response sockets so the listener can close
  everything it opened.
- :class:`MessageReader` turns a socket's frames into control messages with
  their bodies (shared with the control channel's reader).
"""

from __future__ import annotations

import codecs
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Set

import websocket

from .addresses import parse_address, redact_url, reject_url, rendezvous_request_url
from .connection import HybridConnection
from ._transport import HandshakeSet, Verify, open_websocket
from .exceptions import ConnectionClosed, HandshakeError, HybridConnectionError, ProtocolError, RelayTimeoutError
from .protocol import AssemblerEvent, FrameAssembler, MessageReceived, ProtocolViolation, Request

__all__ = [
    "MessageReader", "accept_socket", "reject_socket", "open_request_socket", "refuse_request", "choose_subprotocol",
    "RendezvousSet",
]

log = logging.getLogger(__name__)

_TEXT, _BINARY, _CONT = 0x1, 0x2, 0x0

RequestCallback = Callable[[HybridConnection, Request, bytes, Callable[[], None]], None]
RefuseCallback = Callable[[HybridConnection, Request, int, str], None]


class BodyTooLargeError(ProtocolError):
    """A request body went over the reader's ``max_body`` (it was read and dropped)."""


@dataclass
class _Pending:
    """A kept socket's requests still waiting for their response, and when the last one went out."""

    count: int = 0
    last_done: float = 0.0


class MessageReader:
    """Reads frames from one socket and pairs them into control messages.

    Text messages are decoded incrementally, so a character split across
    fragments survives.
    """

    def __init__(self, conn: HybridConnection, max_body: Optional[int] = None) -> None:
        self.conn = conn
        self.assembler = FrameAssembler(max_body=max_body)
        self._decoder: Optional[codecs.IncrementalDecoder] = None

    def read(self, timeout: Optional[float] = None) -> List[AssemblerEvent]:
        """Events completed by the next frame (often none). Raises ConnectionClosed, RelayTimeoutError."""
        opcode, payload, fin = self.conn.recv_frame(timeout)
        if opcode == _TEXT or (opcode == _CONT and self._decoder is not None):
            if self._decoder is None:
                self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
            text = self._decoder.decode(payload, final=fin)
            if fin:
                self._decoder = None
            return self.assembler.receive_text(text, fin)
        events = self.assembler.receive_binary(payload, fin)
        # The only violation a binary frame reports about a message is a body over max_body.
        return [_too_large(e) if isinstance(e, ProtocolViolation) and e.message is not None else e for e in events]


def _too_large(violation: ProtocolViolation) -> ProtocolViolation:
    return ProtocolViolation(BodyTooLargeError(str(violation.error)), violation.message)


def _connect(url: str, *, timeout: float, verify: Verify, proxy: Optional[str], what: str,
             subprotocols: Optional[Sequence[str]] = None,
             handshakes: Optional[HandshakeSet] = None) -> "websocket.WebSocket":
    return open_websocket(url, headers=None, subprotocols=subprotocols, timeout=timeout, verify=verify,
                          proxy=proxy, what=what, handshakes=handshakes)


def choose_subprotocol(connect_headers: Mapping[str, str], supported: Optional[Sequence[str]]) -> Optional[str]:
    """The first subprotocol the sender offered that the application supports."""
    if not supported:
        return None
    offered = ""
    for name, value in connect_headers.items():
        if name.lower() == "sec-websocket-protocol":
            offered = value
            break
    wanted = {s.lower(): s for s in supported}
    for item in offered.split(","):
        item = item.strip()
        if item and item.lower() in wanted:
            return item
    return None


def accept_socket(
    address: str,
    *,
    id: str,
    path: str,
    connect_headers: Mapping[str, str],
    subprotocol: Optional[str],
    timeout: float,
    io_timeout: float,
    verify: Verify,
    proxy: Optional[str],
    handshakes: Optional[HandshakeSet] = None,
) -> HybridConnection:
    """Connect an accept address; the result is the sender's WebSocket, joined."""
    ws = _connect(address, timeout=timeout, verify=verify, proxy=proxy, what="accept",
                  subprotocols=[subprotocol] if subprotocol else None, handshakes=handshakes)
    parsed = parse_address(address, path)
    return HybridConnection(ws, id=id, headers=dict(connect_headers), path=parsed.suffix, query=parsed.query,
                            subprotocol=subprotocol, io_timeout=io_timeout)


def reject_socket(address: str, status: int, description: str, *, timeout: float, verify: Verify,
                  proxy: Optional[str], handshakes: Optional[HandshakeSet] = None) -> bool:
    """Refuse a sender with ``status``; True when the relay confirmed (410)."""
    url = reject_url(address, status, description)
    try:
        ws = _connect(url, timeout=timeout, verify=verify, proxy=proxy, what="reject", handshakes=handshakes)
    except HandshakeError as exc:
        if exc.status_code == 410:
            return True
        log.warning("rejecting a connection on %s failed: %s", redact_url(address.split("?")[0]), exc)
        return False
    except HybridConnectionError as exc:
        log.warning("rejecting a connection on %s failed: %s", redact_url(address.split("?")[0]), exc)
        return False
    log.warning("the relay upgraded a reject handshake instead of answering 410; closing it")
    HybridConnection(ws).close(1000, "", timeout=1.0)
    return False


def open_request_socket(address: str, *, timeout: float, io_timeout: float, verify: Verify,
                        proxy: Optional[str], handshakes: Optional[HandshakeSet] = None) -> HybridConnection:
    """Connect a request's rendezvous address (``sb-hc-action=request``)."""
    ws = _connect(rendezvous_request_url(address), timeout=timeout, verify=verify, proxy=proxy, what="rendezvous",
                  handshakes=handshakes)
    return HybridConnection(ws, io_timeout=io_timeout)


def refuse_request(address: str, request_id: str, reply: Callable[[HybridConnection], None], *, timeout: float,
                   io_timeout: float, verify: Verify, proxy: Optional[str],
                   handshakes: Optional[HandshakeSet] = None) -> None:
    """Fetch an address-only request we have no room for, and let ``reply`` answer it (a 503)."""
    try:
        conn = open_request_socket(address, timeout=timeout, io_timeout=io_timeout, verify=verify, proxy=proxy,
                                   handshakes=handshakes)
    except HybridConnectionError as exc:
        log.warning("could not open a rendezvous to refuse request %s: %s", request_id, exc)
        return
    try:
        reader = MessageReader(conn)
        deadline = time.monotonic() + io_timeout
        while not any(isinstance(e, MessageReceived) for e in reader.read(max(0.0, deadline - time.monotonic()))):
            pass
        reply(conn)
    except HybridConnectionError as exc:
        log.debug("refusing request %s failed: %s", request_id, exc)
    finally:
        conn.close(1000, "", timeout=1.0)


class RendezvousSet:
    """The listener's rendezvous sockets and their reader threads.

    :param on_request: called from a socket's reader thread for each complete request, with a
        ``done`` callable to call once its response went out (until then the socket is not idle).
    :param on_refuse: called from the reader thread to answer a request it will not hand on
        (``status``, ``text``): 400 for a broken one, 413 for a body over ``max_body``.
    :param limit: most request sockets kept at once; beyond it, :meth:`serve` says no.
    :param idle_timeout: a kept socket with no frames and no response pending for this long is
        closed (so idle keep-alive senders do not hold the ``limit`` forever); None never.
    :param max_body: largest request body read over a rendezvous (None: no limit).
    """

    def __init__(self, path: str, on_request: RequestCallback, limit: int, *,
                 on_refuse: Optional[RefuseCallback] = None, idle_timeout: Optional[float] = 120.0,
                 max_body: Optional[int] = None) -> None:
        self.path = path
        self._on_request = on_request
        self._on_refuse = on_refuse
        self.limit = limit
        self.idle_timeout = idle_timeout
        self.max_body = max_body
        self._lock = threading.Lock()
        self._readers: Dict[threading.Thread, Optional[HybridConnection]] = {}
        self._sockets: Set[HybridConnection] = set()
        self._pending: Dict[HybridConnection, _Pending] = {}
        self._closed = False

    # ---------------------------------------------------------------- accounting

    def track(self, conn: HybridConnection) -> bool:
        """Remember an open socket (to close it on shutdown). False (and closed) if shutting down."""
        with self._lock:
            if not self._closed:
                self._sockets.add(conn)
                return True
        conn.close(1001, "listener closing", timeout=1.0)
        return False

    def forget(self, conn: HybridConnection) -> None:
        with self._lock:
            self._sockets.discard(conn)

    @property
    def sockets(self) -> int:
        with self._lock:
            return len(self._sockets)

    # ---------------------------------------------------------------- readers

    def serve(self, conn: Optional[HybridConnection], connect: Optional[Callable[[], HybridConnection]] = None) -> bool:
        """Start a reader for ``conn`` (or for the socket ``connect()`` opens in the new thread).

        False when the limit is reached or the set is closed (nothing started).
        """
        with self._lock:
            if self._closed or len(self._readers) >= self.limit:
                return False
            thread = threading.Thread(target=self._reader, args=(conn, connect),
                                      name=f"hybridconn-rendezvous-{self.path}", daemon=True)
            self._readers[thread] = conn
            if conn is not None:
                self._sockets.add(conn)
        thread.start()
        return True

    def _reader(self, conn: Optional[HybridConnection], connect: Optional[Callable[[], HybridConnection]]) -> None:
        me = threading.current_thread()
        try:
            if conn is None and connect is not None:
                try:
                    conn = connect()
                except HybridConnectionError as exc:
                    log.warning("could not open a request rendezvous for %s: %s", self.path, exc)
                    return
                if not self.track(conn):
                    return
                with self._lock:
                    self._readers[me] = conn
            if conn is not None:
                self._read_requests(conn)
        except Exception:  # noqa: BLE001 - a reader must end its socket, not die into threading.excepthook
            log.exception("a rendezvous reader of %s failed; closing its socket", self.path)
        finally:
            with self._lock:
                self._readers.pop(me, None)
                if conn is not None:
                    self._sockets.discard(conn)
                    self._pending.pop(conn, None)
            if conn is not None and not conn.closed:
                conn.close(1000, "", timeout=1.0)

    def _read_requests(self, conn: HybridConnection) -> None:
        reader = MessageReader(conn, max_body=self.max_body)
        with self._lock:
            pending = self._pending.setdefault(conn, _Pending())
        while True:
            try:
                events = reader.read(self._idle_wait(conn, pending))
            except RelayTimeoutError:
                if self._idle_wait(conn, pending) == 0.0:
                    log.debug("closing a rendezvous socket of %s idle for %s s", self.path, self.idle_timeout)
                    conn.close(1000, "idle", timeout=1.0)
                    return
                continue
            except ConnectionClosed:
                return
            except HybridConnectionError as exc:  # a protocol error ends this socket
                log.debug("rendezvous socket on %s ended: %s", self.path, exc)
                return
            for event in events:
                self._handle(conn, event, pending)

    def _idle_wait(self, conn: HybridConnection, pending: _Pending) -> Optional[float]:
        """Seconds the reader may wait before the socket counts as idle (0.0: it is now; None: never)."""
        if self.idle_timeout is None:
            return None
        with self._lock:
            if pending.count:
                return self.idle_timeout  # a response is being made: not idle, look again later
            quiet_since = max(conn.last_activity, pending.last_done)
        return max(0.0, quiet_since + self.idle_timeout - time.monotonic())

    def _handle(self, conn: HybridConnection, event: AssemblerEvent, pending: _Pending) -> None:
        message = event.message
        if isinstance(event, MessageReceived) and isinstance(message, Request):
            if message.is_address_only:
                log.warning("an address-only request arrived on a rendezvous socket; ignored")
                return
            with self._lock:
                pending.count += 1
            self._on_request(conn, message, event.body or b"", lambda: self._done(pending))
        elif isinstance(event, ProtocolViolation):
            log.warning("protocol violation on a rendezvous socket of %s: %s", self.path, event.error)
            if isinstance(message, Request) and message.method is not None and self._on_refuse is not None:
                if isinstance(event.error, BodyTooLargeError):
                    self._on_refuse(conn, message, 413, "Payload Too Large")
                else:
                    self._on_refuse(conn, message, 400, "Bad Request")
        else:
            log.warning("unexpected %s on a rendezvous socket of %s", type(message).__name__, self.path)

    def _done(self, pending: _Pending) -> None:
        with self._lock:
            pending.count = max(0, pending.count - 1)
            pending.last_done = time.monotonic()

    # ---------------------------------------------------------------- shutdown

    def close_all(self, timeout: float) -> None:
        """Close every tracked socket (1001) and stop taking new ones."""
        with self._lock:
            self._closed = True
            sockets = list(self._sockets) + [c for c in self._readers.values() if c is not None]
        deadline = time.monotonic() + timeout
        for conn in set(sockets):
            remaining = deadline - time.monotonic()
            if remaining <= 0.05:
                conn.abort()
            else:
                conn.close(1001, "listener closing", timeout=min(remaining, 1.0))

    def join(self, deadline: float) -> bool:
        """Wait for the reader threads; True when all have ended."""
        with self._lock:
            threads = list(self._readers)
        me = threading.current_thread()
        for thread in threads:
            if thread is not me:
                thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            return not any(t.is_alive() for t in self._readers if t is not me)
