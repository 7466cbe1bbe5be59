"""Request rendezvous sockets: opening them, reading the requests they carry, closing them.

A request rendezvous socket (``sb-hc-action=request``) is opened on a
request's ``address`` for two reasons: the relay sent the request
address-only (too large, or chunked) and it must be fetched there, or a
response is too large for the control channel. Either way the relay keeps
routing that sender's later requests over it, so :class:`RendezvousPool`
gives each kept socket a reader thread (``hybridconn-rendezvous-<name>``)
that hands every complete request to a :class:`RequestSink`, for as long as
either side keeps it open (or until it has been idle ``idle_timeout``).

The pool also tracks every other socket the listener opens (accepted
WebSockets, sockets opened for a response), so ``close()`` can close them all.

With ``stream_bodies`` a request is handed on as soon as its head arrives,
its body following through a :class:`~.body_stream.RequestBodyStream` the
reader feeds (and waits on while the handler has not read enough): a body of
any size passes in bounded memory.

While the listener drains (:meth:`RendezvousPool.start_draining`), a request
socket is closed right after its next response, or once it has been idle
:data:`DRAIN_IDLE` seconds: the relay then drops the sender's connection at a
moment the sender is not waiting for an answer, and routes its next request
to another listener.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Protocol, Set

from .._deadline import Deadline
from .._transport import Dialer
from ..addresses import rendezvous_request_url
from ..connection import HybridConnection
from ..exceptions import ConnectionClosed, HybridConnectionError, RelayTimeoutError
from ..protocol import BodyChunk, BodyEnd, MessageHead, MessageReceived, ProtocolViolation, Request
from .body_stream import RequestBodyStream, closed_error
from .handling import error_response
from .reader import BodyTooLargeError, MessageReader
from .responder import Reply
from .stats import Counters

__all__ = ["RendezvousPool", "RendezvousRequest", "RequestSink", "open_request_socket", "refuse_fetched", "DRAIN_IDLE"]

log = logging.getLogger(__name__)

#: While draining, a request socket idle this long is closed.
DRAIN_IDLE = 1.0


@dataclass(frozen=True)
class RendezvousRequest:
    """A complete request read off a rendezvous socket; call ``done`` once its response went out."""

    conn: HybridConnection
    message: Request
    body: bytes = field(repr=False)
    done: Callable[[], None] = field(repr=False)
    #: The body as it arrives (``body`` is then empty), with ``stream_bodies``.
    stream: Optional[Any] = field(default=None, repr=False)  # IO[bytes] or a RequestBodyStream


class RequestSink(Protocol):
    """Who takes the requests the rendezvous readers read (the listener's router)."""

    def rendezvous_request(self, request: RendezvousRequest) -> None:
        """Serve one request; its response goes back over ``request.conn``."""

    def rendezvous_refusal(self, conn: HybridConnection, message: Request, status: int, text: str) -> None:
        """Answer a request the reader will not hand on: 400 when broken, 413 when its body is too large."""


@dataclass
class _Pending:
    """A kept socket's requests still waiting for their response, and when the last one went out."""

    count: int = 0
    last_done: float = 0.0
    #: The streamed body being fed, between its request's head and its end.
    feeding: Optional[RequestBodyStream] = None


def open_request_socket(dialer: Dialer, address: str) -> HybridConnection:
    """Connect a request's rendezvous address (``sb-hc-action=request``)."""
    ws = dialer.open(rendezvous_request_url(address), what="rendezvous")
    return HybridConnection(ws, io_timeout=dialer.io_timeout)


class RendezvousPool:
    """The listener's rendezvous sockets and their reader threads.

    :ivar sink: takes each complete request a reader reads; the listener sets it once, when it
        wires its parts (the router that is the sink also routes into this pool).
    :param limit: most request sockets kept at once; beyond it, :meth:`serve` and :meth:`fetch` say no.
    :param idle_timeout: a kept socket with no frames and no response pending for this long is
        closed (so idle keep-alive senders do not hold the ``limit`` forever); None never.
    :param max_body: largest request body read over a rendezvous (None: no limit); larger gets 413.
        Not applied with ``stream_bodies`` (nothing is held).
    :param stream_bodies: hand each request on at its head, its body in a :class:`RequestBodyStream`.
    :param body_timeout: seconds a handler's read of a streamed body waits for the next piece.
    """

    def __init__(self, name: str, dialer: Dialer, limit: int, *,
                 idle_timeout: Optional[float] = 120.0, max_body: Optional[int] = None,
                 counters: Optional[Counters] = None, stream_bodies: bool = False,
                 body_timeout: Optional[float] = 30.0) -> None:
        self.name = name
        self._dialer = dialer
        self.sink: Optional[RequestSink] = None
        self.limit = limit
        self.idle_timeout = idle_timeout
        self.max_body = max_body
        self.stream_bodies = stream_bodies
        self.body_timeout = body_timeout
        self._counters = counters or Counters()
        self._lock = threading.Lock()
        self._readers: Dict[threading.Thread, Optional[HybridConnection]] = {}
        self._sockets: Set[HybridConnection] = set()
        self._pending: Dict[HybridConnection, _Pending] = {}
        self._closed = False
        self._draining = False

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

    # ---------------------------------------------------------------- opening (ResponseSockets)

    def open_socket(self, address: str) -> HybridConnection:
        """Connect a request's rendezvous address, counted."""
        self._counters.bump("rendezvous_opened")
        return open_request_socket(self._dialer, address)

    def open_for_response(self, address: str) -> HybridConnection:
        """A rendezvous for a large response, tracked at once so close() can close it mid-response."""
        conn = self.open_socket(address)
        if not self.track(conn):
            raise ConnectionClosed(1001, "listener closing")
        return conn

    def keep(self, conn: HybridConnection) -> None:
        """Keep serving a socket opened for a response, or close and forget it (also while draining)."""
        if conn.closed or self._draining or not self.serve(conn):
            conn.close(1000, "", timeout=2.0)
            self.forget(conn)

    # ---------------------------------------------------------------- readers

    def serve(self, conn: HybridConnection) -> bool:
        """Start a reader for ``conn``; False when the limit is reached or the pool is closed."""
        return self._start(conn, None)

    def fetch(self, address: str) -> bool:
        """Open ``address`` in a new reader thread and serve the requests on it (an address-only request)."""
        return self._start(None, address)

    def _start(self, conn: Optional[HybridConnection], address: Optional[str]) -> bool:
        with self._lock:
            if self._closed or len(self._readers) >= self.limit:
                return False
            thread = threading.Thread(target=self._reader, args=(conn, address),
                                      name=f"hybridconn-rendezvous-{self.name}", daemon=True)
            self._readers[thread] = conn
            if conn is not None:
                self._sockets.add(conn)
        thread.start()
        return True

    def _reader(self, conn: Optional[HybridConnection], address: Optional[str]) -> None:
        me = threading.current_thread()
        try:
            if conn is None and address is not None:
                conn = self._open_in_reader(me, address)
            if conn is not None:
                self._read_requests(conn)
        except Exception:  # noqa: BLE001 - a reader must end its socket, not die into threading.excepthook
            log.exception("a rendezvous reader of %s failed; closing its socket", self.name)
        finally:
            with self._lock:
                self._readers.pop(me, None)
                if conn is not None:
                    self._sockets.discard(conn)
                    pending = self._pending.pop(conn, None)
                    if pending is not None and pending.feeding is not None:
                        pending.feeding.fail(ConnectionClosed(None, "the rendezvous socket ended mid-body"))
            if conn is not None and not conn.closed:
                conn.close(1000, "", timeout=1.0)

    def _open_in_reader(self, me: threading.Thread, address: str) -> Optional[HybridConnection]:
        try:
            conn = self.open_socket(address)
        except HybridConnectionError as exc:
            log.warning("could not open a request rendezvous for %s: %s", self.name, exc)
            return None
        if not self.track(conn):
            return None
        with self._lock:
            self._readers[me] = conn
        return conn

    def _read_requests(self, conn: HybridConnection) -> None:
        streaming = self.stream_bodies
        reader = MessageReader(conn, max_body=None if streaming else self.max_body, streaming=streaming)
        with self._lock:
            pending = self._pending.setdefault(conn, _Pending())
        while True:
            try:
                wait = self._idle_wait(conn, pending)
                events = reader.read(DRAIN_IDLE if wait is None else min(wait, DRAIN_IDLE))
            except RelayTimeoutError:
                if self._idle_wait(conn, pending) == 0.0:  # (None: never idle; a number: not yet)
                    log.debug("closing an idle rendezvous socket of %s", self.name)
                    conn.close(1000, "idle", timeout=1.0)
                    return
                continue
            except ConnectionClosed as exc:
                if exc.code == 1000:  # a clean close may end a body; a lost socket truncates it
                    for event in reader.finish():
                        self._handle(conn, event, pending)
                return
            except HybridConnectionError as exc:  # a protocol error ends this socket
                log.debug("rendezvous socket on %s ended: %s", self.name, exc)
                return
            for event in events:
                self._handle(conn, event, pending)

    def _idle_wait(self, conn: HybridConnection, pending: _Pending) -> Optional[float]:
        """Seconds the reader may wait before the socket counts as idle (0.0: it is now; None: never)."""
        idle_timeout = DRAIN_IDLE if self._draining else self.idle_timeout
        if idle_timeout is None:
            return None
        with self._lock:
            if pending.count:
                return idle_timeout  # a response is being made: not idle, look again later
            quiet_since = max(conn.last_activity, pending.last_done)
        return max(0.0, quiet_since + idle_timeout - time.monotonic())

    def _handle(self, conn: HybridConnection, event: Any, pending: _Pending) -> None:
        if isinstance(event, BodyChunk):
            if pending.feeding is not None:
                pending.feeding.feed(event.data)  # waits while the handler is behind
            return
        if isinstance(event, BodyEnd):
            if pending.feeding is not None:
                pending.feeding.finish()
                pending.feeding = None
            return
        message = event.message
        if isinstance(event, MessageHead) and isinstance(message, Request):
            self._stream_request(conn, message, pending)
        elif isinstance(event, ProtocolViolation) and pending.feeding is not None:
            # the streamed request is with its handler already: its read fails, and it answers
            log.warning("protocol violation mid-body on a rendezvous socket of %s: %s", self.name, event.error)
            pending.feeding.fail(event.error)
            pending.feeding = None
        elif isinstance(event, MessageReceived) and isinstance(message, Request):
            if message.is_address_only:
                log.warning("an address-only request arrived on a rendezvous socket; ignored")
                return
            with self._lock:
                pending.count += 1
            request = RendezvousRequest(conn, message, event.body or b"", lambda: self._done(conn, pending))
            self._sink_or_fail().rendezvous_request(request)
        elif isinstance(event, ProtocolViolation):
            log.warning("protocol violation on a rendezvous socket of %s: %s", self.name, event.error)
            if isinstance(message, Request) and message.method is not None:
                too_large = isinstance(event.error, BodyTooLargeError)
                status, text = (413, "Payload Too Large") if too_large else (400, "Bad Request")
                self._sink_or_fail().rendezvous_refusal(conn, message, status, text)
        else:
            log.warning("unexpected %s on a rendezvous socket of %s", type(message).__name__, self.name)

    def _stream_request(self, conn: HybridConnection, message: Request, pending: _Pending) -> None:
        """Hand ``message`` on now; its body follows through a stream this reader feeds."""
        stream = RequestBodyStream(timeout=self.body_timeout)
        with self._lock:
            pending.count += 1
        pending.feeding = stream

        def done() -> None:
            stream.abandon()  # the reader drops the rest, so the socket can carry the next request
            self._done(conn, pending)

        self._sink_or_fail().rendezvous_request(RendezvousRequest(conn, message, b"", done, stream=stream))

    def _sink_or_fail(self) -> RequestSink:
        if self.sink is None:
            raise RuntimeError("RendezvousPool.sink was never set")
        return self.sink

    def _done(self, conn: HybridConnection, pending: _Pending) -> None:
        with self._lock:
            pending.count = max(0, pending.count - 1)
            pending.last_done = time.monotonic()
            last = self._draining and pending.count == 0
        if last:
            # Right after a response, before the sender sends its next request on the connection.
            conn.close(1000, "listener draining", timeout=1.0)

    def start_draining(self) -> None:
        """Close each request socket after its next response, or once idle :data:`DRAIN_IDLE` seconds."""
        with self._lock:
            self._draining = True  # each reader looks at this at least every DRAIN_IDLE seconds

    # ---------------------------------------------------------------- shutdown

    def close_all(self, until: Deadline) -> None:
        """Close every tracked socket (1001) within ``until`` and stop taking new ones."""
        with self._lock:
            self._closed = True
            sockets = set(self._sockets) | {c for c in self._readers.values() if c is not None}
            feeding = [p.feeding for p in self._pending.values() if p.feeding is not None]
        for stream in feeding:
            stream.fail(closed_error())  # wakes a reader waiting to feed, and the handler reading
        for conn in sockets:
            left = until.left()
            if left <= 0.05:
                conn.abort()
            else:
                conn.close(1001, "listener closing", timeout=min(left, 1.0))

    def join(self, until: Deadline) -> bool:
        """Wait for the reader threads until ``until``; True when all have ended."""
        with self._lock:
            threads = list(self._readers)
        for thread in threads:
            until.join(thread)
        me = threading.current_thread()
        with self._lock:
            return not any(t.is_alive() for t in self._readers if t is not me)


def refuse_fetched(dialer: Dialer, address: str, request_id: str, status: int, text: str) -> None:
    """Fetch an address-only request we will not serve, and answer it ``status`` over its socket."""
    try:
        conn = open_request_socket(dialer, address)
    except HybridConnectionError as exc:
        log.warning("could not open a rendezvous to refuse request %s: %s", request_id, exc)
        return
    try:
        # Streaming, so the answer goes out at the request's head: a refusal never waits for the
        # refused body (a slow sender would hold one of the few overflow threads for its whole length).
        reader = MessageReader(conn, streaming=True)
        until = Deadline(dialer.io_timeout)
        while not any(isinstance(e, (MessageReceived, MessageHead)) for e in reader.read(until.left())):
            pass
        Reply(request_id, rendezvous=conn).send(error_response(status, text))
    except HybridConnectionError as exc:
        log.debug("refusing request %s failed: %s", request_id, exc)
    finally:
        conn.close(1000, "", timeout=1.0)
