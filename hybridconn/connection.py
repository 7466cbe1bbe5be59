"""HybridConnection: one relayed, duplex WebSocket.

The sender's and the listener's socket are the same type (a multiplexed listener's is
:class:`hybridconn._listener.polled.PolledConnection`). websocket-client only performs the
handshake; then the connection frames its traffic itself with :mod:`hybridconn._frames`, adding:

- thread-safe sends under one send lock; a unit send (JSON text frame + body) nothing interleaves;
- ``recv(timeout)`` that waits with ``poll`` (the socket timeout untouched) and reads all that came;
- text validated by Python's own UTF-8 codec, masks applied in C;
- after a peer's close frame, the close is echoed and the socket shut down at once, unless
  :attr:`HybridConnection.defer_close_answer` keeps it open for sending (the far half of a half-close).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from typing import Callable, Dict, Iterable, Iterator, NoReturn, Optional, Tuple, TypeVar, Union, cast

import websocket

from ._deadline import Deadline
from ._frames import (
    OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, Frame, FrameError, FrameParser, Role,
    close_payload, fragment_frames, pack_frame, parse_close,
)
from ._messages import MessageAssembler
from ._wait import recv_some, send_all
from .protocol import CONTROL_MESSAGE_SIZE, FRAGMENT_SIZE, MAX_MESSAGE_SIZE
from .exceptions import ConnectionClosed, ProtocolError, RelayTimeoutError

__all__ = ["HybridConnection", "Message", "MAX_MESSAGE_SIZE", "CONTROL_MESSAGE_SIZE"]  # the sizes: protocol.py

log: logging.Logger = logging.getLogger(__name__)

Message = Union[str, bytes]
_T = TypeVar("_T")

#: Bytes asked of the socket per read: at least this, more when a longer frame is under way.
READ_SIZE = 64 * 1024
_MAX_READ = 1024 * 1024
_ABNORMAL = 1006


class HybridConnection:
    """A relayed WebSocket.

    :ivar id: the connection's tracking id (``sb-hc-id`` / the accept's ``id``).
    :ivar headers: on the listener side, the sender's connect headers.
    :ivar path: on the listener side, the path suffix after the hybrid connection name.
    :ivar query: on the listener side, the application's query string (no ``sb-hc-*``).
    :ivar subprotocol: the negotiated subprotocol, or None.
    """

    def __init__(
        self, ws: websocket.WebSocket, *, id: str = "", headers: Optional[Dict[str, str]] = None, path: str = "",
        query: str = "", subprotocol: Optional[str] = None, io_timeout: float = 60.0,
        max_message_size: Optional[int] = None,
    ) -> None:
        self._ws = ws
        self.id = id
        self.headers: Dict[str, str] = dict(headers or {})
        self.path = path
        self.query = query
        self.subprotocol: Optional[str] = subprotocol if subprotocol is not None else ws.getsubprotocol()
        self._io_timeout = io_timeout
        self._send_lock = threading.Lock()
        self._recv_lock = threading.Lock()
        # websocket-client reads the handshake byte by byte: nothing past it is buffered in Python.
        self._parser = FrameParser(Role.CLIENT, accept_masked=True, max_message_size=max_message_size)
        self._messages = MessageAssembler()
        self._state_lock = threading.Lock()
        self._closed = threading.Event()
        self._close_sent = False
        #: On the peer's close, keep sending: :meth:`recv` raises :class:`ConnectionClosed` from then
        #: on, and our :meth:`shutdown_send` or :meth:`close` answers it (ends the handshake).
        self.defer_close_answer = False
        self._peer_close: Optional[Tuple[int, str]] = None  # the peer's close, not answered yet
        self.close_code: Optional[int] = None
        self.close_reason: str = ""
        self.last_activity: float = time.monotonic()
        self._sock: Optional[socket.socket] = ws.sock
        if self._sock is not None:
            # Bounds a send to a peer that stopped reading (reads are bounded by poll).
            self._sock.settimeout(io_timeout)

    # ------------------------------------------------------------------ state

    @property
    def closed(self) -> bool:
        """True once the connection has closed, either side first."""
        return self._closed.is_set()

    def __repr__(self) -> str:
        state = f"closed code={self.close_code}" if self.closed else "open"
        return f"<HybridConnection id={self.id!r} path={self.path!r} {state}>"

    def __enter__(self) -> "HybridConnection":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ sending

    def send(self, message: Message, timeout: Optional[float] = None) -> None:
        """Send one text (``str``) or binary (``bytes``) message. Thread-safe.
        :param timeout: longest wait for the send lock (:class:`RelayTimeoutError` after it; None: no limit)."""
        if isinstance(message, str):
            wire = pack_frame(OP_TEXT, message.encode("utf-8"), masked=True)
        elif isinstance(message, (bytes, bytearray, memoryview)):
            wire = pack_frame(OP_BINARY, message, masked=True)
        else:
            raise TypeError(f"send() takes str or bytes, not {type(message).__name__}")
        with _SendGuard(self, timeout):
            self._write(wire)

    def send_unit(self, text: str, body: Union[None, bytes, Iterable[bytes]] = None) -> None:
        """Send a JSON text frame and, if given, its body as one binary message, as a unit: a ``bytes``
        body as one frame, chunks as fragments ending with FIN; no other send comes between them."""
        head = pack_frame(OP_TEXT, text.encode("utf-8"), masked=True)
        if isinstance(body, (bytes, bytearray, memoryview)):
            head = b"".join((head, pack_frame(OP_BINARY, body, masked=True)))  # one write for both
            body = None
        with _SendGuard(self):
            self._write(head)
            if body is not None:
                self._write_fragments(body)

    def send_stream(self, chunks: Iterable[bytes]) -> None:
        """Send one binary message in fragments, as the chunks come (a streamed body)."""
        with _SendGuard(self):
            self._write_fragments(chunks)

    def _write_fragments(self, chunks: Iterable[bytes]) -> None:
        """The chunks as one fragmented binary message, each written as it comes (send lock held)."""
        try:
            for wire in fragment_frames(chunks, FRAGMENT_SIZE, masked=True):
                self._write(wire)
        except ConnectionClosed:
            raise
        except Exception:
            # Fragments may already be out: nothing valid can follow them on this
            # socket, so end it with 1011 (a control frame may interleave fragments).
            self._fail(1011, "the body stream failed", locked=True)
            raise

    def ping(self, payload: bytes = b"", timeout: Optional[float] = None) -> None:
        """Send a WebSocket ping (``payload``: at most 125 bytes, else ``ValueError``).
        :param timeout: longest wait for the send lock (:class:`RelayTimeoutError` after it; None: no limit)."""
        self._send_control(OP_PING, payload, timeout)

    def pong(self, payload: bytes = b"", timeout: Optional[float] = None) -> None:
        """Send an unsolicited WebSocket pong, a keep-alive (``payload``, ``timeout``: as for :meth:`ping`)."""
        self._send_control(OP_PONG, payload, timeout)

    def _send_control(self, opcode: int, payload: bytes, timeout: Optional[float]) -> None:
        wire = pack_frame(opcode, payload, masked=True)
        with _SendGuard(self, timeout):
            self._write(wire)

    def _sendall(self, wire: bytes) -> None:
        """The one write path: whole frames onto the socket, with the send lock held."""
        sock = self._sock
        if sock is None:
            raise OSError("the connection has no socket")
        send_all(sock, wire)

    def _write(self, wire: bytes) -> None:
        """:meth:`_sendall`, a failure being the end of the connection (:class:`ConnectionClosed`)."""
        try:
            self._sendall(wire)
        except Exception as exc:  # noqa: BLE001 - translated here, at the boundary
            self._mark_closed(_ABNORMAL, "connection lost while sending")
            self._shutdown_socket()
            raise ConnectionClosed(self.close_code, self.close_reason) from exc

    def _write_close(self, code: int, reason: str) -> None:
        """A close frame, send lock held; the peer may be gone already (the caller decides the state)."""
        try:
            self._sendall(pack_frame(OP_CLOSE, close_payload(code, reason), masked=True))
        except Exception:  # noqa: BLE001 - the peer may be gone already
            log.debug("could not send close frame on %r", self)

    # ------------------------------------------------------------------ receiving

    def recv(self, timeout: Optional[float] = None) -> Message:
        """The next message: ``str`` for text, ``bytes`` for binary.

        :raises RelayTimeoutError: nothing arrived within ``timeout`` seconds.
        :raises ConnectionClosed: the connection is (or became) closed.
        :raises ProtocolError: the peer sent invalid UTF-8 in a text message (closed with 1007).
        """
        return cast(Message, self._read_locked(self._message_from, timeout))  # mypy infers Sequence[object]

    def recv_frame(self, timeout: Optional[float] = None) -> Tuple[int, bytes, bool]:
        """The next data frame as ``(opcode, payload, fin)``, fragments not joined, text undecoded.

        For readers that need frame boundaries (the control channel's body
        frames); controls are handled as in :meth:`recv`.
        """
        return self._read_locked(tuple, timeout)  # type: ignore[return-value]  # a plain tuple of the Frame

    def __iter__(self) -> Iterator[Message]:
        """Messages until the connection closes; a clean close ends the loop."""
        while True:
            try:
                yield self.recv()
            except ConnectionClosed as exc:
                if exc.clean or self._close_sent:
                    return
                raise

    def _message_from(self, frame: Frame) -> Optional[Message]:
        try:
            return self._messages.add(frame)
        except FrameError as exc:  # the only one: invalid UTF-8
            self._fail(exc.code, exc.reason)
            raise ProtocolError("the peer sent invalid UTF-8 in a text message") from exc

    def _read_locked(self, step: Callable[[Frame], Optional[_T]], timeout: Optional[float]) -> _T:
        """Pass data frames to ``step`` under the receive lock until it returns a result, within ``timeout``."""
        deadline = Deadline(timeout)
        if not self._recv_lock.acquire(timeout=-1 if timeout is None else max(timeout, 0)):
            raise RelayTimeoutError(f"nothing received within {timeout} s (another thread is receiving)")
        try:
            while True:
                result = step(self._next_data_frame(deadline, timeout))
                if result is not None:
                    return result
        finally:
            self._recv_lock.release()

    def _next_data_frame(self, deadline: Deadline, timeout: Optional[float]) -> Frame:
        """The next data frame, waiting for it; pings, pongs and closes are handled on the way."""
        while (frame := self._buffered_frame(None)) is None:
            self._receive(deadline, timeout)
        return frame

    def _buffered_frame(self, pong_timeout: Optional[float]) -> Optional[Frame]:
        """The next data frame among the bytes received, or None; controls handled on the way."""
        while True:
            if self.closed or self._peer_close is not None:
                raise ConnectionClosed(self.close_code, self.close_reason)
            try:
                frame = self._parser.next_frame()
            except FrameError as exc:
                raise self._broken(exc) from exc
            if frame is None:
                return None
            self.last_activity = time.monotonic()
            opcode = frame.opcode
            if opcode < OP_CLOSE:
                return frame
            if opcode == OP_PING:  # closing: no pong due; a send under way (pong_timeout 0) shows we live
                with contextlib.suppress(ConnectionClosed, RelayTimeoutError):
                    self._send_control(OP_PONG, frame.payload, pong_timeout)
            elif opcode == OP_CLOSE:
                self._on_peer_close(frame.payload)
                raise ConnectionClosed(self.close_code, self.close_reason)
            # a pong: unsolicited pongs are a keep-alive; nothing to do

    def _receive(self, deadline: Deadline, timeout: Optional[float]) -> None:
        """Wait for bytes until ``deadline`` and feed them to the parser; inside a frame the
        peer must deliver something every ``io_timeout`` s whatever the timeout (else: lost)."""
        sock = self._sock
        if sock is None:
            self._mark_closed(_ABNORMAL, "socket is gone")
            raise ConnectionClosed(self.close_code, self.close_reason)
        remaining = deadline.remaining()
        stall_check = self._parser.inside_frame and (remaining is None or remaining > self._io_timeout)
        size = min(max(READ_SIZE, self._parser.wanted), _MAX_READ)
        data = recv_some(sock, self._io_timeout if stall_check else remaining, size)  # poll, not select
        if data is None:
            if stall_check:
                self._lost(socket.timeout("the peer stalled inside a frame"))
            raise RelayTimeoutError(f"no message within {timeout} s")
        if not data:
            self._lost(None)
        self._parser.feed(data)

    def _broken(self, error: FrameError) -> ConnectionClosed:
        """The peer broke the protocol: fail the connection with the code ``error`` calls for."""
        reason = f"protocol error: {error.reason}"
        self._fail(error.code, reason)
        return ConnectionClosed(error.code, reason)

    def _lost(self, exc: Optional[BaseException]) -> NoReturn:
        """The socket failed or hit EOF while reading: raise ConnectionClosed."""
        if self.closed:
            raise ConnectionClosed(self.close_code, self.close_reason) from exc
        self._mark_closed(_ABNORMAL, "connection lost")
        self._shutdown_socket()
        raise ConnectionClosed(_ABNORMAL, "connection lost") from exc

    # ------------------------------------------------------------------ closing

    def close(self, code: int = 1000, reason: str = "", timeout: float = 5.0) -> None:
        """Close the connection with ``code`` and ``reason``; returns within ``timeout``.

        Waits briefly for the peer's close frame, then shuts the socket down.
        Safe to call twice and from any thread. ``ValueError`` for a code no
        close frame may carry (1005, 1006, 1015, under 1000, over 4999).
        """
        close_payload(code, reason)  # check the arguments before any state changes
        deadline = Deadline(timeout)
        with self._state_lock:
            first = not self._close_sent and not self.closed
            if first:
                self._close_sent = True
                if self._peer_close is None:  # else the peer's code stays the connection's
                    self.close_code, self.close_reason = code, reason
        if first:
            self._try_send_close(code, reason, timeout=min(timeout, 2.0))
            if self._peer_close is None:
                self._await_peer_close(deadline)
        self._closed.set()
        self._shutdown_socket()

    def shutdown_send(self, code: int = 1000, reason: str = "", timeout: float = 2.0) -> None:
        """Half-close: send a close frame now, but keep receiving until the peer's close.

        Later sends raise :class:`ConnectionClosed`; :meth:`recv` returns the peer's messages until
        its close frame arrives (not echoed: it answers ours). Call :meth:`close` afterwards to
        release the socket. This is how azbridge signals EOF on one direction of a stream.
        After a deferred peer close (:attr:`defer_close_answer`) this is the answer: the connection closes.
        """
        close_payload(code, reason)
        with self._state_lock:
            if self._close_sent or self.closed:
                return
            self._close_sent = True
            if self._peer_close is None:
                self.close_code, self.close_reason = code, reason
        self._try_send_close(code, reason, timeout=timeout)
        if self._peer_close is not None:
            self._mark_closed(*self._peer_close)
            self._shutdown_socket()

    def await_transport_end(self, timeout: float) -> bool:
        """After a deferred peer close, watch the socket up to ``timeout`` s; True once the connection
        ended. Nothing valid may follow the peer's close (what comes is dropped); EOF: the peer gave up."""
        if self._recv_lock.acquire(timeout=max(timeout, 0.0)):
            try:
                sock = self._sock
                if not self.closed and sock is not None and recv_some(sock, timeout, READ_SIZE) == b"":
                    self._lost(None)
            except ConnectionClosed:
                pass
            finally:
                self._recv_lock.release()
        return self.closed

    def _await_peer_close(self, deadline: Deadline) -> None:
        # If no thread is reading, read the peer's answer ourselves; otherwise the reader will.
        if self._recv_lock.acquire(blocking=False):
            try:
                while not self.closed and not deadline.expired:
                    self._next_data_frame(deadline, None)  # data after our close is dropped
            except (ConnectionClosed, RelayTimeoutError):
                pass
            finally:
                self._recv_lock.release()
        else:
            self._closed.wait(deadline.left(cap=2.0))

    def _try_send_close(self, code: int, reason: str, timeout: float = 2.0) -> None:
        if not self._send_lock.acquire(timeout=timeout):
            return  # a send is stuck on a dead network; shutting down will unblock it
        try:
            self._write_close(code, reason)
        finally:
            self._send_lock.release()

    def _on_peer_close(self, payload: bytes) -> None:
        try:
            code, reason = parse_close(payload)
        except FrameError as exc:
            raise self._broken(exc) from exc
        with self._state_lock:
            echo = not self._close_sent
            if echo:  # the peer closed first: its code is the connection's
                self.close_code, self.close_reason = (1005 if code is None else code), reason
                if self.defer_close_answer:
                    self._peer_close = (self.close_code, reason)
                    return  # we keep sending; shutdown_send() or close() answers
            self._close_sent = True
        if echo:
            self._try_send_close(1000 if code is None else code, "")
        self._mark_closed(1005 if code is None else code, reason)
        self._shutdown_socket()

    def _mark_closed(self, code: int, reason: str) -> None:
        with self._state_lock:
            if self.close_code is None:
                self.close_code, self.close_reason = code, reason
            self._closed.set()

    def _fail(self, code: int, reason: str, locked: bool = False) -> None:
        """Fail the connection: send a close frame if we can, then drop the socket; for where waiting
        for the peer's close would deadlock (we hold the receive lock, or the send lock when ``locked``)."""
        with self._state_lock:
            first = not self._close_sent and not self.closed
            self._close_sent = True
        if first:
            if locked:
                self._write_close(code, reason)
            else:
                self._try_send_close(code, reason, timeout=1.0)
        self._mark_closed(code, reason)
        self._shutdown_socket()

    def abort(self) -> None:
        """Drop the connection at once, no close handshake (wakes blocked readers)."""
        self._mark_closed(_ABNORMAL, "aborted")
        self._shutdown_socket()

    def _shutdown_socket(self) -> None:
        sock = self._sock
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()
        self._ws.connected = False


class _SendGuard:
    """Holds the connection's send lock; refuses to send on a closed connection."""

    def __init__(self, conn: HybridConnection, timeout: Optional[float] = None) -> None:
        self._conn = conn
        self._timeout = timeout

    def __enter__(self) -> None:
        conn = self._conn
        if not conn._send_lock.acquire(timeout=-1 if self._timeout is None else max(self._timeout, 0.0)):
            raise RelayTimeoutError(f"another send held the connection for over {self._timeout} s")
        if conn.closed or conn._close_sent:
            conn._send_lock.release()
            raise ConnectionClosed(conn.close_code, conn.close_reason or "connection is closed")

    def __exit__(self, *exc_info: object) -> None:
        self._conn._send_lock.release()
