"""A server-side WebSocket on a blocking socket: hybridconn's frame codec, one send lock.

One thread reads (:meth:`WsChannel.read_events`); any thread may send. Other
threads never ``close()`` the socket (its descriptor could be reused under
the reader); they only shut it down, which wakes the reader, and the owning
connection thread closes it on its way out.

Frames are packed and parsed by :mod:`hybridconn._frames`, the codec the
client side uses too (server role: frames out unmasked, frames in must be
masked). Data events are wsproto's own ``TextMessage`` / ``BytesMessage``
values (``data``, ``message_finished``), one per frame received, text
decoded incrementally so a character split across fragments arrives whole.

Why not wsproto's ``Connection`` for parsing, as before: measured in one
process on the project machine (2 cores, CPython 3.11, wsproto 1.3.2),
turning masked client frames into these events cost per frame, wsproto vs
the shared codec: 64 B binary 11.2 vs 4.5 us, 64 B text 10.2 vs 3.8 us,
16 kB 30-35 vs 24-25 us, 64 kB 95-120 vs 83-89 us, 1 MB about equal (both
unmask with ``bytes.translate`` lanes). Small frames are the emulator's common
case (every relayed request is one), and one codec means one set of RFC 6455
checks for both ends. The emulator declines every extension, so no frame may
carry RSV bits. A frame longer than :data:`READ_SIZE` is relayed in pieces as
it arrives (as wsproto did), so a channel never holds a whole long frame.

Pings are answered (or, with :attr:`WsChannel.close_on_ping`, the connection
dropped, the pessimistic reading of azure-relay-dotnet #103) and pongs
swallowed here, per hop. :attr:`WsChannel.pong_interval` sends the service's
unsolicited Pongs; :attr:`WsChannel.idle_timeout` drops, silently, a
connection that carried nothing for that long (the service's load balancer,
azure-relay #33): any frame from the peer and any data we send count, our own
Pongs do not (the service's 210 s Pongs did not keep #33's listener alive). A close is reported as
one of three terminal events:

* :class:`PeerClosed` - the peer started the close; it has been answered and
  the socket shut down at once, unless :attr:`WsChannel.relay_close` is set:
  then nothing is answered, the channel keeps sending, and the answer is the
  :meth:`WsChannel.send_close` that relays the other side's close (the service
  passes closes on "without any intervention or interpretation").
* :class:`CloseAnswered` - the peer answered a close we sent; never relay it.
* :class:`ConnectionLost` - EOF, reset, a frame that broke the protocol (the
  peer got a 1002/1007 close), or no answer to our close in time.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import List, Optional, Union, cast

from wsproto.events import BytesMessage, TextMessage

from .._frames import (
    OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, Frame, FrameError, FrameParser, Role, close_payload,
    pack_frame, parse_close,
)
from .._messages import MessageAssembler
from .._wait import recv_some, send_all
from .close_watch import CloseWatch

__all__ = [
    "WsChannel", "PeerClosed", "CloseAnswered", "ConnectionLost", "DataEvent", "ChannelEvent", "TextMessage",
    "BytesMessage", "shutdown_socket",
]

log: logging.Logger = logging.getLogger(__name__)

#: Seconds we wait for the peer to answer a close frame before dropping the socket.
CLOSE_ANSWER_TIMEOUT = 5.0
#: With :attr:`WsChannel.relay_close`: seconds the peer may be silent after a relayed close before
#: the socket is dropped (it may still be sending, e.g. the answer to a half-closed request).
RELAYED_CLOSE_IDLE = 60.0
READ_SIZE = 65536
_MAX_READ = 1024 * 1024


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

    def __init__(self, sock: socket.socket, trailing_data: bytes = b"", name: str = "",
                 max_message_size: Optional[int] = None) -> None:
        self.sock = sock
        self.name = name
        # A long frame is relayed as it comes; where messages are assembled (a control channel),
        # ``max_message_size`` ends a longer one with 1009 before it is held.
        self._parser = FrameParser(Role.SERVER, max_piece=READ_SIZE, max_message_size=max_message_size)
        self._messages = MessageAssembler()
        self.send_lock: threading.Lock = threading.Lock()
        self._down = threading.Event()
        self._close_sent = False  # guarded by send_lock
        self._close_deadline: Optional[float] = None
        self._terminated = False
        self._fed = False
        self._silenced = False
        self._outbound_text: Optional[bool] = None  # type of a message being sent in fragments
        #: Seconds the connection may carry nothing (our Pongs aside) before it is dropped (None: never).
        self.idle_timeout: Optional[float] = None
        #: Seconds between unsolicited Pongs sent by the reader (None: none).
        self.pong_interval: Optional[float] = None
        #: Drop the connection (no close frame) when the peer sends a Ping.
        self.close_on_ping = False
        #: Relay closes end to end: a peer's close is not answered here (see :class:`PeerClosed`).
        self.relay_close = False
        self._peer_closed = False  # the peer's close arrived and is not answered yet (relay_close)
        self._last_traffic = time.monotonic()
        self._last_pong = time.monotonic()
        #: Ends this channel when a close sent by another thread goes unanswered; without one the
        #: reader wakes every :data:`CLOSE_ANSWER_TIMEOUT` to look for itself.
        self.close_watch: Optional[CloseWatch] = None
        self.feed(trailing_data)

    def feed(self, data: bytes) -> None:
        """Bytes that arrived with the handshake (read past the HTTP request)."""
        if data:
            self._parser.feed(data)
            self._fed = True

    # ------------------------------------------------------------------ state

    @property
    def is_down(self) -> bool:
        """True once the socket has been shut down (by anyone)."""
        return self._down.is_set()

    @property
    def close_deadline(self) -> Optional[float]:
        """When an unanswered close of ours ends the channel (``time.monotonic()``), if one was sent."""
        return self._close_deadline

    @property
    def can_send(self) -> bool:
        return not self._down.is_set() and not self._close_sent

    def abort(self) -> None:
        """Drop the connection now: no close frame, socket shut down."""
        self._down.set()
        shutdown_socket(self.sock)

    # ------------------------------------------------------------------ sending

    def silence(self) -> None:
        """From now on write nothing at all (not even pongs): a silent half-open peer, for fault tests."""
        self._silenced = True

    def _write_locked(self, wire: bytes) -> bool:
        """The one write path: whole frames onto the socket, send lock held. False if the socket failed."""
        if self._silenced:
            return True
        try:
            send_all(self.sock, wire)
            return True
        except (OSError, ValueError):
            self.abort()
            return False

    def _data_frame(self, data: Union[str, bytes, bytearray], fin: bool = True) -> bytes:
        """One data frame; raises ``TypeError`` (not text or bytes; a type change inside a fragmented message).

        Call with the send lock held: it follows the fragmented message being sent.
        """
        payload: Union[bytes, bytearray]
        if isinstance(data, str):
            text, payload = True, data.encode("utf-8")
        elif isinstance(data, (bytes, bytearray, memoryview)):
            text, payload = False, data
        else:
            raise TypeError("Must provide bytes or text")
        if self._outbound_text is None:
            opcode = OP_TEXT if text else OP_BINARY
        elif self._outbound_text is not text:
            raise TypeError("Data type mismatch inside message")
        else:
            opcode = OP_CONT
        self._outbound_text = None if fin else text
        return pack_frame(opcode, payload, fin=fin)

    def send_message(self, data: Union[str, bytes, bytearray], fin: bool = True) -> bool:
        """Send a text (str) or binary (bytes) frame; ``fin=False`` for a fragment. False if it can't."""
        with self.send_lock:
            if not self.can_send:
                return False
            try:
                wire = self._data_frame(data, fin)
            except TypeError:
                return False
            self._last_traffic = time.monotonic()
            return self._write_locked(wire)

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
            self._last_traffic = time.monotonic()
            return self._write_locked(wire)

    def send_close(self, code: Optional[int] = 1000, reason: str = "") -> bool:
        """Start a close handshake; the reader reports :class:`CloseAnswered` or drops it after a timeout.

        ``code`` None (or 1005) sends a close frame without a code. False if the
        channel is closing already, or for a code no close frame may carry.
        """
        with self.send_lock:
            if not self.can_send:
                return False
            try:
                wire = pack_frame(OP_CLOSE, close_payload(None if code == 1005 else code, reason or ""))
            except ValueError:
                return False
            self._close_sent = True
            if self._peer_closed:  # this answers the peer's close: the handshake is complete
                written = self._write_locked(wire)
                self.abort()
                return written
            wait = RELAYED_CLOSE_IDLE if self.relay_close else CLOSE_ANSWER_TIMEOUT
            self._close_deadline = time.monotonic() + wait
            if self.close_watch is not None:
                self.close_watch.watch(self, self._close_deadline)
            return self._write_locked(wire)

    def close_overdue(self, now: float) -> Optional[float]:
        """For :class:`CloseWatch`: drop the channel if its close went unanswered past the deadline.

        Returns the deadline when it has moved past ``now`` (look again then), else None.
        """
        deadline = self._close_deadline
        if deadline is None or self._terminated or self._down.is_set():
            return None
        if now < deadline:
            return deadline
        self.abort()  # wakes the reader, which reports the unanswered close
        return None

    def _answer_locked(self, opcode: int, payload: bytes) -> None:
        """A pong or the close that answers the peer's, unless we are closing or down already."""
        if not self.can_send:
            return
        if opcode == OP_CLOSE:
            self._close_sent = True
        self._write_locked(pack_frame(opcode, payload))

    # ------------------------------------------------------------------ receiving

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
        # Without a close watch, never block unbounded: a close sent by another thread sets a
        # deadline we must notice. With one, the watch wakes us (see close_watch.py for why).
        wait = self.timers_due_in()
        if timeout is not None:
            wait = min(wait, timeout)
        if self.close_watch is None:
            wait = min(wait, CLOSE_ANSWER_TIMEOUT)
        if self._close_deadline is not None:
            wait = min(wait, max(0.0, self._close_deadline - time.monotonic()))
        data = recv_some(self.sock, wait, min(max(READ_SIZE, self._parser.wanted), _MAX_READ))
        if data is None:
            if self._close_deadline is not None and time.monotonic() >= self._close_deadline:
                return self._terminate([ConnectionLost("the peer did not answer the close frame in time")])
            return self._run_timers()
        if not data:
            if self._close_deadline is not None and time.monotonic() >= self._close_deadline:
                return self._terminate([ConnectionLost("the peer did not answer the close frame in time")])
            return self._terminate([ConnectionLost("connection lost")])
        self._last_traffic = time.monotonic()
        if self.relay_close and self._close_deadline is not None:  # a half-closed peer still sending
            self._close_deadline = self._last_traffic + RELAYED_CLOSE_IDLE
        self._parser.feed(data)
        return self._collect() + self._run_timers()

    # ------------------------------------------------------------------ service timers

    def timers_due_in(self) -> float:
        """Seconds until the idle drop or the next pong is due (a large number when neither is set)."""
        now = time.monotonic()
        due = [3600.0]
        if self.idle_timeout is not None:
            due.append(self._last_traffic + self.idle_timeout - now)
        if self.pong_interval is not None:
            due.append(self._last_pong + self.pong_interval - now)
        return max(0.0, min(due))

    def _run_timers(self) -> List[ChannelEvent]:
        """Send a due pong; drop an idle connection silently (as a load balancer does)."""
        if self._terminated:
            return []
        now = time.monotonic()
        if self.idle_timeout is not None and now - self._last_traffic >= self.idle_timeout:
            log.info("%s: nothing received for %.0f s; dropped (idle timeout)", self.name or "websocket",
                     self.idle_timeout)
            return self._terminate([ConnectionLost(f"idle for {self.idle_timeout:g} s")])
        if self.pong_interval is not None and now - self._last_pong >= self.pong_interval:
            self._last_pong = now
            with self.send_lock:
                self._answer_locked(OP_PONG, b"")
        return []

    def _collect(self) -> List[ChannelEvent]:
        """Events for every whole frame received so far."""
        out: List[ChannelEvent] = []
        try:
            while True:
                frame = self._parser.next_frame()
                if frame is None:
                    return out
                opcode = frame.opcode
                if self._peer_closed:
                    continue  # nothing may follow a close frame: ignore it
                if opcode < OP_CLOSE:
                    text, data, finished = self._messages.piece(frame)
                    out.append(TextMessage(data=cast(str, data), message_finished=finished) if text
                               else BytesMessage(data=cast(bytes, data), message_finished=finished))
                elif opcode == OP_PING:
                    if self.close_on_ping:
                        log.info("%s: the peer sent a Ping; dropped (close_on_ping)", self.name or "websocket")
                        out.append(ConnectionLost("closed on a ping"))
                        return self._terminate(out)
                    with self.send_lock:
                        self._answer_locked(OP_PONG, frame.payload)
                elif opcode == OP_CLOSE:
                    event = self._on_close(frame)
                    out.append(event)
                    if self._peer_closed:
                        return out  # held open for the other side's data and close
                    return self._terminate(out)
                # OP_PONG: unsolicited pongs are a keep-alive; nothing to do
        except FrameError as exc:
            out.append(self._on_violation(exc))
            return self._terminate(out)

    def _on_close(self, frame: Frame) -> ChannelEvent:
        code, reason = parse_close(frame.payload)  # FrameError for a broken close frame
        with self.send_lock:
            answered = self._close_sent
            if not answered and self.relay_close and not self._down.is_set():
                self._peer_closed = True
            elif not answered and not self._down.is_set():
                self._answer_locked(OP_CLOSE, close_payload(code, reason))  # echo code and reason
        return CloseAnswered(code, reason) if answered else PeerClosed(code, reason)

    def _on_violation(self, exc: FrameError) -> ConnectionLost:
        """Fail the connection with the code the violation calls for (1002, 1007 for bad UTF-8)."""
        with self.send_lock:
            self._answer_locked(OP_CLOSE, close_payload(exc.code, exc.reason))
        log.info("%s: protocol violation, closing with %s: %s", self.name or "websocket", exc.code, exc.reason)
        return ConnectionLost(f"protocol violation: {exc.reason}", code=exc.code)

    def _terminate(self, events: List[ChannelEvent]) -> List[ChannelEvent]:
        self._terminated = True
        self.abort()
        if self.close_watch is not None and self._close_deadline is not None:
            self.close_watch.forget(self)
        return events
