"""A server-side WebSocket on a blocking socket: wsproto framing, one send lock.

One thread reads (:meth:`WsChannel.read_events`); any thread may send. Other
threads never ``close()`` the socket (its descriptor could be reused under
the reader); they only shut it down, which wakes the reader, and the owning
connection thread closes it on its way out.

Pings are answered and pongs swallowed here, per hop. A close is reported as
one of three terminal events:

* :class:`PeerClosed` - the peer started the close; it has been answered and
  the socket shut down at once.
* :class:`CloseAnswered` - the peer answered a close we sent; never relay it.
* :class:`ConnectionLost` - EOF, reset, a frame that broke the protocol (the
  peer got a 1002/1007 close), or no answer to our close in time.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import List, Optional, Union

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.utilities import LocalProtocolError

from .._wait import recv_some

__all__ = ["WsChannel", "PeerClosed", "CloseAnswered", "ConnectionLost", "DataEvent", "ChannelEvent"]

log = logging.getLogger(__name__)

#: Seconds we wait for the peer to answer a close frame before dropping the socket.
CLOSE_ANSWER_TIMEOUT = 5.0
READ_SIZE = 65536

_FRAME_HEAD = struct.Struct("!BB")
_FRAME_HEAD_16 = struct.Struct("!BBH")
_FRAME_HEAD_64 = struct.Struct("!BBQ")


@dataclass(frozen=True)
class PeerClosed:
    code: Optional[int]
    reason: str


@dataclass(frozen=True)
class CloseAnswered:
    code: Optional[int]
    reason: str


@dataclass(frozen=True)
class ConnectionLost:
    reason: str
    code: Optional[int] = None  # the close code we sent when the peer broke the protocol


DataEvent = Union[TextMessage, BytesMessage]
ChannelEvent = Union[TextMessage, BytesMessage, PeerClosed, CloseAnswered, ConnectionLost]


def shutdown_socket(sock: socket.socket, how: int = socket.SHUT_RDWR) -> None:
    """Shut a socket down without closing it (safe from any thread, also for TLS sockets)."""
    try:
        # socket.socket.shutdown, not SSLSocket.shutdown: the latter drops the SSL object
        # under a reader that may be blocked in it.
        socket.socket.shutdown(sock, how)
    except OSError:
        pass


class WsChannel:
    """A WebSocket whose handshake is done; ``trailing_data`` are bytes read past it."""

    def __init__(self, sock: socket.socket, trailing_data: bytes = b"", name: str = "") -> None:
        self.sock = sock
        self.name = name
        self._conn = Connection(ConnectionType.SERVER, trailing_data=trailing_data)
        self.send_lock = threading.Lock()
        self._down = threading.Event()
        self._close_deadline: Optional[float] = None
        self._terminated = False
        self._fed = False
        self._silenced = False
        self._outbound_text: Optional[bool] = None  # type of a message being sent in fragments

    def feed(self, data: bytes) -> None:
        """Bytes that arrived with the handshake (read past the HTTP request)."""
        if data:
            self._conn.receive_data(data)
            self._fed = True

    # ------------------------------------------------------------------ state

    @property
    def is_down(self) -> bool:
        """True once the socket has been shut down (by anyone)."""
        return self._down.is_set()

    @property
    def can_send(self) -> bool:
        return not self._down.is_set() and self._conn.state is ConnectionState.OPEN

    def abort(self) -> None:
        """Drop the connection now: no close frame, socket shut down."""
        self._down.set()
        shutdown_socket(self.sock)

    # ------------------------------------------------------------------ sending

    def silence(self) -> None:
        """From now on write nothing at all (not even pongs): a silent half-open peer, for fault tests."""
        self._silenced = True

    def _send_bytes_locked(self, data: bytes) -> bool:
        if self._silenced:
            return True
        try:
            self.sock.sendall(data)
            return True
        except (OSError, ValueError):
            self.abort()
            return False

    def _data_frame(self, data: Union[str, bytes], fin: bool = True) -> bytes:
        """One unmasked server data frame, built here rather than by wsproto.

        The emulator declines every extension, so a data frame is a header and
        the payload as is; wsproto's general path copied the payload twice and
        cost a tenth of the relay's CPU per small relayed request. Raises
        ``TypeError`` as wsproto does (not text or bytes; a type change inside
        a fragmented message). Call with the send lock held.
        """
        if isinstance(data, str):
            text, payload = True, data.encode("utf-8")
        elif isinstance(data, (bytes, bytearray, memoryview)):
            text, payload = False, data
        else:
            raise TypeError("Must provide bytes or text")
        if self._outbound_text is None:
            opcode = 0x1 if text else 0x2
        elif self._outbound_text is not text:
            raise TypeError("Data type mismatch inside message")
        else:
            opcode = 0x0  # continuation
        self._outbound_text = None if fin else text
        first = (0x80 if fin else 0) | opcode
        size = len(payload)
        if size < 126:
            header = _FRAME_HEAD.pack(first, size)
        elif size < 65536:
            header = _FRAME_HEAD_16.pack(first, 126, size)
        else:
            header = _FRAME_HEAD_64.pack(first, 127, size)
        return b"".join((header, payload))

    def send_message(self, data: Union[str, bytes], fin: bool = True) -> bool:
        """Send a text (str) or binary (bytes) frame; ``fin=False`` for a fragment. False if it can't."""
        with self.send_lock:
            if not self.can_send:
                return False
            try:
                wire = self._data_frame(data, fin)
            except TypeError:
                return False
            return self._send_bytes_locked(wire)

    def send_unit(self, text: str, body: Optional[bytes] = None) -> bool:
        """A JSON text frame and (if ``body`` is not None) one binary message, never interleaved."""
        with self.send_lock:
            if not self.can_send:
                return False
            try:
                head = self._data_frame(text)
                wire = head if body is None else b"".join((head, self._data_frame(body)))
            except TypeError:
                return False
            return self._send_bytes_locked(wire)

    def send_close(self, code: Optional[int] = 1000, reason: str = "") -> bool:
        """Start a close handshake; the reader reports :class:`CloseAnswered` or drops it after a timeout."""
        with self.send_lock:
            if self._down.is_set() or self._conn.state is not ConnectionState.OPEN:
                return False
            try:
                wire = self._conn.send(CloseConnection(code=code if code is not None else 1005, reason=reason or None))
            except (LocalProtocolError, TypeError, ValueError):
                return False
            self._close_deadline = time.monotonic() + CLOSE_ANSWER_TIMEOUT
            return self._send_bytes_locked(wire)

    # ------------------------------------------------------------------ receiving

    def _recv(self, timeout: Optional[float]) -> Optional[bytes]:
        """Bytes, b"" at EOF, None on timeout."""
        return recv_some(self.sock, timeout, READ_SIZE)

    def read_events(self, timeout: Optional[float] = None) -> List[ChannelEvent]:
        """Read once and return what it completed ([] on timeout).

        After a terminal event the socket is shut down and further calls
        return ``[ConnectionLost]``.
        """
        if self._terminated:
            return [ConnectionLost("connection already closed")]
        if self._fed:
            self._fed = False
            early = self._collect()
            if early:
                return early
        # Never block unbounded: a close sent by another thread sets a deadline we must notice.
        wait = CLOSE_ANSWER_TIMEOUT if timeout is None else min(timeout, CLOSE_ANSWER_TIMEOUT)
        if self._close_deadline is not None:
            remaining = max(0.0, self._close_deadline - time.monotonic())
            wait = remaining if wait is None else min(wait, remaining)
        data = self._recv(wait)
        if data is None:
            if self._close_deadline is not None and time.monotonic() >= self._close_deadline:
                return self._terminate([ConnectionLost("the peer did not answer the close frame in time")])
            return []
        if not data:
            return self._terminate([ConnectionLost("connection lost")])
        try:
            self._conn.receive_data(data)
        except LocalProtocolError:
            return self._terminate([ConnectionLost("data after the close")])
        return self._collect()

    def _collect(self) -> List[ChannelEvent]:
        out: List[ChannelEvent] = []
        for event in self._conn.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                out.append(event)
            elif isinstance(event, Ping):
                with self.send_lock:
                    if self.can_send:
                        self._send_bytes_locked(self._conn.send(event.response()))
            elif isinstance(event, CloseConnection):
                out.append(self._on_close(event))
                return self._terminate(out)
            # Pong: unsolicited pongs are a keep-alive; nothing to do
        return out

    def _on_close(self, event: CloseConnection) -> ChannelEvent:
        code = None if event.code == 1005 else int(event.code)
        state = self._conn.state
        if state is ConnectionState.OPEN:
            # wsproto reports a frame it could not parse as a close while still open:
            # fail the connection with the code it chose (1002, or 1007 for bad UTF-8).
            with self.send_lock:
                try:
                    self._send_bytes_locked(self._conn.send(CloseConnection(code=event.code, reason=event.reason)))
                except LocalProtocolError:
                    pass
            log.info("%s: protocol violation, closing with %s: %s", self.name or "websocket", event.code, event.reason)
            return ConnectionLost(f"protocol violation: {event.reason}", code=int(event.code))
        if state is ConnectionState.REMOTE_CLOSING:
            with self.send_lock:
                if not self._down.is_set():
                    try:
                        self._send_bytes_locked(self._conn.send(event.response()))
                    except LocalProtocolError:
                        pass
            return PeerClosed(code, event.reason or "")
        return CloseAnswered(code, event.reason or "")

    def _terminate(self, events: List[ChannelEvent]) -> List[ChannelEvent]:
        self._terminated = True
        self.abort()
        return events
