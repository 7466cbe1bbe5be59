"""One accepted TCP connection, served by one thread: TLS, HTTP/1.1 with h11, WebSocket upgrades.

Each request is handed to the connection's router (:func:`.routes.route`),
which answers it - or returns a :class:`~.status.Refusal` for this module
to write. Bad HTTP gets 400 (431 for a header section over 32 kB) and the
connection is closed; no failure here ever reaches another connection.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple, Union

import h11
from wsproto.utilities import generate_accept_token

from .._redact import redact
from .._wait import recv_some, send_all
from ..protocol import HEADER_METADATA_LIMIT, printable_reason
from .context import EmulatorContext, Target
from .exchange import RendezvousLink
from .status import Refusal, describe, error_body
from .ws import WsChannel, shutdown_socket

__all__ = ["HttpConnection", "Incoming", "ConnectionDone", "Router", "WRITE_TIMEOUT"]

log: logging.Logger = logging.getLogger(__name__)

TLS_HANDSHAKE_TIMEOUT = 10.0
#: Write stall allowed before a peer that stopped reading is dropped.
WRITE_TIMEOUT = 30.0
#: An idle keep-alive connection is closed after this long.
IDLE_TIMEOUT = 240.0
#: After an answer that closes the connection (an early 413 or 503, a 401, a 400), the client may
#: still be sending the request it answers. Closing a socket with unread bytes sends a TCP reset,
#: which may discard the answer before the client reads it (RFC 7230 section 6.6: close in stages).
#: So the emulator shuts its writing side (the client sees the answer, then the end) and reads and
#: drops what still comes, until the client stops or closes: at most LINGER_TIME seconds in all,
#: LINGER_IDLE seconds without a byte (the figures Apache's lingering close uses).
LINGER_TIME = 2.0
LINGER_IDLE = 2.0

#: What :meth:`HttpConnection.next_event` gives: an h11 event, or the ``h11.PAUSED`` sentinel.
H11Event = Union[h11.Event, type]

#: Serves one request: True to keep the connection for the next one, False to close it,
#: or a refusal to answer (then the connection closes).
Router = Callable[["HttpConnection", h11.Request], Union[bool, Refusal]]


class ConnectionDone(Exception):
    """The peer went away or the connection was dropped."""


@dataclass(frozen=True)
class Incoming:
    """A request as an endpoint sees it.

    :ivar headers: lower-case names, repeated headers joined with ``", "``.
    """

    conn: "HttpConnection"
    request: h11.Request
    target: Target
    headers: Dict[str, str]

    @property
    def ctx(self) -> EmulatorContext:
        return self.conn.ctx

    def tracker(self, path: Optional[str] = None) -> str:
        """The ``SystemTracker`` for ``path`` (the request's own path by default)."""
        return self.conn.ctx.tracker(self.target.path if path is None else path)

    def refusal(self, status: int, text: str, path: Optional[str] = None) -> Refusal:
        """A refusal with a full service description, tracked under ``path``."""
        return Refusal(status, describe(text, self.tracker(path)))


class HttpConnection:
    """Serves one client connection until it closes."""

    def __init__(
        self,
        ctx: EmulatorContext,
        sock: socket.socket,
        peer: Tuple[str, int],
        tls: Optional[ssl.SSLContext],
        number: int,
        router: Router,
    ) -> None:
        self.ctx = ctx
        self.sock = sock
        self.peer = peer
        self.tls = tls
        self.number = number
        self.router = router
        self.h11: h11.Connection = h11.Connection(h11.SERVER, max_incomplete_event_size=HEADER_METADATA_LIMIT)
        self._link: Optional[RendezvousLink] = None  # the rendezvous socket persisting for this sender
        self._link_lock = threading.Lock()
        self._ended = False  # _finish ran: a link attached now would never be closed
        self._linger = False  # an answer that closes the connection went out: close in stages
        self.drop_requested: threading.Event = threading.Event()
        self.thread: threading.Thread = threading.Thread(
            target=self.run, name=f"hybridconn-emulator-conn-{number}", daemon=True
        )

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Serve on this connection's own thread; RuntimeError when no thread can be started
        (then nothing is tracked, and the caller closes the socket)."""
        self.ctx.track(self)
        try:
            self.thread.start()
        except BaseException:
            self.ctx.untrack(self)
            raise

    def abort(self) -> None:
        """Drop the connection now (from any thread)."""
        self.drop_requested.set()
        shutdown_socket(self.sock)

    def drop_after_response(self) -> None:
        """Stop reading requests; the response being written (if any) still completes."""
        self.drop_requested.set()
        shutdown_socket(self.sock, socket.SHUT_RD)

    def run(self) -> None:
        try:
            if self.tls is not None:
                self._tls_handshake()
            self.sock.settimeout(WRITE_TIMEOUT)
            self._serve()
        except ConnectionDone:
            pass
        except Exception:  # noqa: BLE001 - one broken connection must never disturb the others
            log.exception("emulator connection %s from %s failed", self.number, self.peer[0])
        finally:
            self._finish()

    def _tls_handshake(self) -> None:
        assert self.tls is not None
        self.sock.settimeout(TLS_HANDSHAKE_TIMEOUT)
        try:
            self.sock = self.tls.wrap_socket(self.sock, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            log.info("TLS handshake with %s failed: %s", self.peer[0], exc)
            raise ConnectionDone() from exc

    @property
    def link(self) -> Optional[RendezvousLink]:
        """The rendezvous socket a listener opened for this sender connection, if any."""
        return self._link

    def attach_link(self, link: RendezvousLink) -> bool:
        """Route this connection's next requests over ``link``; False once the connection has ended.

        A listener may connect a request's rendezvous just as the sender's connection ends (its
        request failed otherwise): then nobody would ever close the link, so it is refused.
        """
        with self._link_lock:
            if self._ended:
                return False
            self._link = link
            return True

    def _finish(self) -> None:
        with self._link_lock:
            self._ended = True
            link = self._link
        if link is not None:
            link.sender_gone()
        if self._linger and not self.drop_requested.is_set() and not self.ctx.stop.is_set():
            self._linger_close()
        shutdown_socket(self.sock)
        try:
            self.sock.close()
        except OSError:
            pass
        self.ctx.untrack(self)
        self.ctx.clients.release(self.peer[0])

    def _linger_close(self) -> None:
        """Shut the writing side and drop what the client still sends (see ``LINGER_TIME``).

        Bounded: it ends at the client's EOF, after ``LINGER_IDLE`` quiet seconds, at
        ``LINGER_TIME``, or at once when the emulator stops (``abort`` shuts the socket).
        """
        shutdown_socket(self.sock, socket.SHUT_WR)
        deadline = time.monotonic() + LINGER_TIME
        dropped = 0
        while True:
            wait = min(LINGER_IDLE, deadline - time.monotonic())
            data = recv_some(self.sock, wait, 65536) if wait > 0 else None
            if not data:  # EOF, a dead socket, or the client went quiet or took too long
                break
            dropped += len(data)
        if dropped:
            log.debug("connection from %s: dropped %d bytes sent after its answer", self.peer[0], dropped)

    # ------------------------------------------------------------------ h11 plumbing

    def next_event(self, timeout: Optional[float] = None) -> H11Event:
        """The next h11 event; raises ConnectionDone on timeout or a dead socket."""
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = recv_some(self.sock, timeout, 65536)
            if data is None:
                raise ConnectionDone()
            self.h11.receive_data(data)

    def next_body_event(self) -> H11Event:
        """The next event of a request body: ConnectionDone when none comes within the body idle deadline."""
        return self.next_event(self.ctx.limits.body_idle_timeout)

    def _next_request(self, first: bool) -> H11Event:
        """The next request head (or the end of the connection).

        The whole head must arrive within ``head_timeout`` (slowloris): counted from the
        connection's start for its first request, from the first byte of a later one (a kept-alive
        connection may idle up to ``IDLE_TIMEOUT`` between requests).
        """
        head_timeout = self.ctx.limits.head_timeout
        deadline = time.monotonic() + head_timeout if first else None
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            wait = IDLE_TIMEOUT if deadline is None else deadline - time.monotonic()
            data = recv_some(self.sock, wait, 65536) if wait > 0 else None
            if data is None:
                if deadline is not None:
                    self._head_too_slow(head_timeout)
                raise ConnectionDone()
            if deadline is None:
                deadline = time.monotonic() + head_timeout
            self.h11.receive_data(data)

    def _head_too_slow(self, head_timeout: float) -> None:
        log.info("connection from %s: no complete request head within %g s; closing it", self.peer[0], head_timeout)
        if self.h11.our_state is h11.IDLE:
            text = f"The request head did not arrive within {head_timeout:g} seconds"
            try:
                self.refuse(Refusal(408, describe(text, self.ctx.authority)), close=True)
            except ConnectionDone:
                pass

    def send(self, *events: h11.Event) -> None:
        wire = b"".join(self.h11.send(event) or b"" for event in events)
        try:
            send_all(self.sock, wire)
        except (OSError, ValueError) as exc:
            raise ConnectionDone() from exc

    def continue_if_expected(self) -> None:
        """Send ``100 Continue`` when the client waits for it before sending its body."""
        if self.h11.they_are_waiting_for_100_continue:
            self.send(h11.InformationalResponse(status_code=100, headers=[]))

    def refuse(self, refusal: Refusal, close: bool = True) -> None:
        """Answer with a service error (no Via header: it did not come from a listener), its body
        JSON in the service's shape (azure-relay-dotnet #141)."""
        body = error_body(refusal)
        headers: List[Tuple[str, str]] = [
            ("Content-Type", "application/json; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ]
        if close:
            headers.append(("Connection", "close"))
            self._linger = True
        head = h11.Response(status_code=refusal.status, headers=headers, reason=printable_reason(refusal.description))
        try:
            self.send(head, h11.Data(data=body), h11.EndOfMessage())
        except h11.LocalProtocolError:
            raise ConnectionDone() from None

    def finish_request_body(self, limit: int = 64 * 1024, within: float = 1.0) -> bool:
        """Read and discard the rest of the request body before a refusal; False (close instead) when
        more than ``limit`` bytes are left or they do not all come within ``within`` seconds: a
        refusal never waits on the body it refuses (a slow sender would hold this thread)."""
        seen = 0
        deadline = time.monotonic() + within
        while self.h11.their_state is h11.SEND_BODY:
            wait = deadline - time.monotonic()
            if wait <= 0:
                return False
            try:
                event = self.next_event(wait)
            except ConnectionDone:
                return False  # only the wait ran out; a dead socket fails the refusal's write
            if isinstance(event, h11.Data):
                seen += len(event.data)
                if seen > limit:
                    return False
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionDone()
        return True

    # ------------------------------------------------------------------ serving

    def _serve(self) -> None:
        first = True
        while not self.ctx.stop.is_set():
            try:
                event = self._next_request(first)
                first = False
            except h11.RemoteProtocolError as exc:
                self._bad_http(exc)
                return
            if not isinstance(event, h11.Request):
                return  # ConnectionClosed, PAUSED
            try:
                outcome = self.router(self, event)
            except h11.RemoteProtocolError as exc:
                self._bad_http(exc)
                return
            if isinstance(outcome, Refusal):
                self.refuse(outcome, close=True)
                return
            if not outcome or self.drop_requested.is_set():
                return
            if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
                self.h11.start_next_cycle()
            else:
                return

    def _bad_http(self, exc: h11.RemoteProtocolError) -> None:
        if self.drop_requested.is_set():
            # We shut the reading side ourselves (the listener's rendezvous died mid-request), so the
            # "incomplete body" is our doing: the sender's connection is dropped, never answered 400.
            log.debug("connection from %s dropped mid-request: %s", self.peer[0], redact(str(exc)))
            return
        status = exc.error_status_hint or 400
        # h11 quotes the offending line, which may be an authorization header.
        detail = redact(str(exc))
        text = "Request header section too large" if status == 431 else f"Bad request: {detail}"
        log.info("bad HTTP from %s: %s -> %d", self.peer[0], detail, status)
        if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            try:
                self.refuse(Refusal(status, describe(text, self.ctx.authority)), close=True)
            except ConnectionDone:
                pass

    # ------------------------------------------------------------------ WebSocket upgrades

    def new_websocket(self, name: str, max_message_size: Optional[int] = None) -> WsChannel:
        """The WebSocket this connection becomes once :meth:`admit_websocket` sends its 101."""
        ws = WsChannel(self.sock, b"", name=name, max_message_size=max_message_size)
        ws.close_watch = self.ctx.close_watch
        return ws

    def accept_websocket(self, incoming: Incoming, subprotocol: Optional[str], name: str) -> WsChannel:
        """Send 101 (declining every extension) and wrap the socket."""
        ws = self.new_websocket(name)
        with ws.send_lock:
            self._upgrade(incoming, subprotocol, ws)
        return ws

    def admit_websocket(
        self, incoming: Incoming, ws: WsChannel, admit: Callable[[], Optional[Refusal]]
    ) -> Optional[Refusal]:
        """Like :meth:`accept_websocket` for ``ws``, but ``admit`` decides first.

        ``admit`` runs before the 101 goes out, with the channel's send lock
        held: once the client sees its handshake complete, the emulator already
        routes to it, and nothing can be sent ahead of the 101. A refusal it
        returns is returned instead of upgrading.
        """
        with ws.send_lock:
            refusal = admit()
            if refusal is not None:
                return refusal
            self._upgrade(incoming, None, ws)
        return None

    def _upgrade(self, incoming: Incoming, subprotocol: Optional[str], ws: WsChannel) -> None:
        key = incoming.headers["sec-websocket-key"].encode("latin-1")
        response_headers: List[Tuple[str, str]] = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", generate_accept_token(key).decode("ascii")),
        ]
        if subprotocol:
            response_headers.append(("Sec-WebSocket-Protocol", subprotocol))
        self.send(h11.InformationalResponse(status_code=101, headers=response_headers))
        trailing, _closed = self.h11.trailing_data
        ws.feed(trailing)
        self.sock.settimeout(WRITE_TIMEOUT)
