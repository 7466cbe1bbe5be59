"""HybridConnection: one relayed, duplex WebSocket.

The sender's socket and the listener's accepted rendezvous socket are the
same type. It wraps a connected websocket-client ``WebSocket`` and adds what
the relay needs:

- thread-safe sends, and a unit send (a JSON text frame plus its body frames)
  that no other send can interleave with;
- ``recv(timeout)`` that waits with ``poll`` instead of changing the socket
  timeout under a concurrent sender;
- text validated with Python's own UTF-8 decoder (websocket-client's
  pure-Python check costs ~3 ms per 16 kB);
- after a peer's close frame, the close is echoed and the socket shut down at
  once (websocket-client would leave it open and park the far side for 10 s).
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from typing import Callable, Dict, Iterable, Iterator, List, Optional, TypeVar, Union

import websocket
from websocket import ABNF

from ._framing import masked_frame
from ._wait import wait_readable
from .exceptions import ConnectionClosed, ProtocolError, RelayTimeoutError

__all__ = ["HybridConnection", "Message"]

log = logging.getLogger(__name__)

Message = Union[str, bytes]
_T = TypeVar("_T")

#: Fragment size for streamed bodies.
FRAGMENT_SIZE = 64 * 1024
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
        self,
        ws: websocket.WebSocket,
        *,
        id: str = "",
        headers: Optional[Dict[str, str]] = None,
        path: str = "",
        query: str = "",
        subprotocol: Optional[str] = None,
        io_timeout: float = 60.0,
    ) -> None:
        self._ws = ws
        self.id = id
        self.headers: Dict[str, str] = dict(headers or {})
        self.path = path
        self.query = query
        self.subprotocol = subprotocol if subprotocol is not None else ws.getsubprotocol()
        self._send_lock = threading.Lock()
        self._recv_lock = threading.Lock()
        self._fragment_opcode: Optional[int] = None  # opcode of a fragmented message in progress
        self._fragments: List[bytes] = []
        self._state_lock = threading.Lock()
        self._closed = threading.Event()
        self._close_sent = False
        self.close_code: Optional[int] = None
        self.close_reason: str = ""
        self.last_activity = time.monotonic()
        sock = ws.sock
        if sock is not None:
            # Bounds a stalled frame read or a send to a peer that stopped reading.
            sock.settimeout(io_timeout)

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

        :param timeout: longest wait for the send lock while another send is in
            progress (:class:`RelayTimeoutError` after it); None waits as long as it takes.
        """
        if isinstance(message, str):
            frame = ABNF.create_frame(message.encode("utf-8"), ABNF.OPCODE_TEXT)
        elif isinstance(message, (bytes, bytearray, memoryview)):
            frame = ABNF.create_frame(bytes(message), ABNF.OPCODE_BINARY)
        else:
            raise TypeError(f"send() takes str or bytes, not {type(message).__name__}")
        with _SendGuard(self, timeout):
            self._write(frame)

    def send_unit(self, text: str, body: Union[None, bytes, Iterable[bytes]] = None) -> None:
        """Send a JSON text frame and, if given, its body as one binary message, as a unit.

        A ``bytes`` body goes as a single frame; an iterable of chunks goes as
        fragments ending with FIN. No other send on this connection can come
        between the text frame and the last body frame.
        """
        with self._locked_send():
            self._write(ABNF.create_frame(text.encode("utf-8"), ABNF.OPCODE_TEXT))
            if body is None:
                return
            if isinstance(body, (bytes, bytearray, memoryview)):
                self._write(ABNF.create_frame(bytes(body), ABNF.OPCODE_BINARY))
                return
            self._write_fragments(body)

    def send_stream(self, chunks: Iterable[bytes]) -> None:
        """Send one binary message in fragments, as the chunks come (a streamed body)."""
        with self._locked_send():
            self._write_fragments(chunks)

    def _write_fragments(self, chunks: Iterable[bytes]) -> None:
        opcode = ABNF.OPCODE_BINARY
        previous: Optional[bytes] = None
        try:
            for chunk in _split_chunks(chunks):
                if previous is not None:
                    self._write(ABNF.create_frame(previous, opcode, fin=0))
                    opcode = ABNF.OPCODE_CONT
                previous = chunk
        except ConnectionClosed:
            raise
        except Exception:
            # Fragments may already be out: nothing valid can follow them on this
            # socket, so end it with 1011 (a control frame may interleave fragments).
            self._fail(1011, "the body stream failed", locked=True)
            raise
        self._write(ABNF.create_frame(previous or b"", opcode, fin=1))

    def ping(self, payload: bytes = b"", timeout: Optional[float] = None) -> None:
        """Send a WebSocket ping.

        :param timeout: longest wait for the send lock (another send in progress);
            :class:`RelayTimeoutError` when it passes. None waits as long as it takes.
        """
        with _SendGuard(self, timeout):
            self._write(ABNF.create_frame(payload, ABNF.OPCODE_PING))

    def _send_frames(self, frames: Iterable[ABNF]) -> None:
        with self._locked_send():
            for frame in frames:
                self._write(frame)

    def _locked_send(self) -> "_SendGuard":
        return _SendGuard(self)

    def _write(self, frame: ABNF) -> None:
        # Framed and masked here, not by websocket-client's send_frame(): its pure-Python
        # masking was over half the listener's CPU on large bodies (see _framing.py).
        # Every send holds _send_lock, so websocket-client's own send lock is not needed.
        try:
            self._ws.sock.sendall(masked_frame(frame.fin, frame.opcode, frame.data))
        except Exception as exc:  # noqa: BLE001 - translated here, at the boundary
            self._mark_closed(_ABNORMAL, "connection lost while sending")
            self._shutdown_socket()
            raise ConnectionClosed(self.close_code, self.close_reason) from exc

    # ------------------------------------------------------------------ receiving

    def recv(self, timeout: Optional[float] = None) -> Message:
        """The next message: ``str`` for text, ``bytes`` for binary.

        :raises RelayTimeoutError: nothing arrived within ``timeout`` seconds.
        :raises ConnectionClosed: the connection is (or became) closed.
        :raises ProtocolError: the peer sent invalid UTF-8 in a text message
            (the connection is closed with 1007).
        """
        return self._read_locked(self._read_one, timeout)

    def recv_frame(self, timeout: Optional[float] = None) -> "tuple[int, bytes, bool]":
        """The next data frame as ``(opcode, payload, fin)``, fragments not joined.

        For readers that need frame boundaries (the control channel's body
        frames). Pings are answered; pongs and closes are handled as in
        :meth:`recv`. Text payloads are returned undecoded.
        """
        return self._read_locked(self._read_data_frame, timeout)

    def _read_data_frame(self) -> "Optional[tuple[int, bytes, bool]]":
        frame = self._next_frame()
        if frame is None:
            return None
        return frame.opcode, frame.data, bool(frame.fin)

    def _read_locked(self, step: "Callable[[], Optional[_T]]", timeout: Optional[float]) -> "_T":
        """Run ``step`` under the receive lock until it yields a result, within ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._recv_lock.acquire(timeout=-1 if timeout is None else max(timeout, 0)):
            raise RelayTimeoutError(f"nothing received within {timeout} s (another thread is receiving)")
        try:
            while True:
                if self.closed:
                    raise ConnectionClosed(self.close_code, self.close_reason)
                self._wait_readable(deadline, timeout)
                result = step()
                if result is not None:
                    return result
        finally:
            self._recv_lock.release()

    def _wait_readable(self, deadline: Optional[float], timeout: Optional[float]) -> None:
        sock = self._ws.sock
        if sock is None:
            self._mark_closed(_ABNORMAL, "socket is gone")
            raise ConnectionClosed(self.close_code, self.close_reason)
        if self._ws.frame_buffer.recv_buffer or (hasattr(sock, "pending") and sock.pending()):
            return
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise RelayTimeoutError(f"no message within {timeout} s")
        try:
            readable = wait_readable(sock, remaining)  # poll: select fails for descriptors >= 1024
        except (OSError, ValueError) as exc:  # closed under us
            self._mark_closed(_ABNORMAL, "socket closed")
            raise ConnectionClosed(self.close_code, self.close_reason) from exc
        if not readable:
            raise RelayTimeoutError(f"no message within {timeout} s")

    def _next_frame(self) -> Optional[ABNF]:
        """Read one frame; handle control frames. None when the frame was a control frame."""
        try:
            frame = self._ws.recv_frame()
        except Exception as exc:  # noqa: BLE001 - translated here, at the boundary
            if self.closed:
                raise ConnectionClosed(self.close_code, self.close_reason) from exc
            code, reason = _ABNORMAL, "connection lost"
            if isinstance(exc, websocket.WebSocketProtocolException):
                code, reason = 1002, f"protocol error: {exc}"
                self._try_send_close(1002, "protocol error")
            self._mark_closed(code, reason)
            self._shutdown_socket()
            raise ConnectionClosed(code, reason) from exc
        self.last_activity = time.monotonic()
        opcode = frame.opcode
        if opcode == ABNF.OPCODE_PING:
            try:
                self._send_frames([ABNF.create_frame(frame.data, ABNF.OPCODE_PONG)])
            except ConnectionClosed:
                pass
            return None
        if opcode == ABNF.OPCODE_PONG:
            return None
        if opcode == ABNF.OPCODE_CLOSE:
            self._on_peer_close(frame.data)
            raise ConnectionClosed(self.close_code, self.close_reason)
        return frame

    def _read_one(self) -> Optional[Message]:
        frame = self._next_frame()
        if frame is None:
            return None
        # Fragments are collected in a list and joined once: websocket-client's
        # continuation buffer concatenates per frame, quadratic for large messages.
        opcode, data = frame.opcode, frame.data
        if opcode == ABNF.OPCODE_CONT:
            if self._fragment_opcode is None:
                self._fail(1002, "protocol error")
                raise ConnectionClosed(1002, "protocol error: a continuation frame without a message")
            self._fragments.append(data)
            if not frame.fin:
                return None
            opcode, data = self._fragment_opcode, b"".join(self._fragments)
            self._fragment_opcode, self._fragments = None, []
        else:
            if self._fragment_opcode is not None:
                self._fail(1002, "protocol error")
                raise ConnectionClosed(1002, "protocol error: a new message inside a fragmented one")
            if not frame.fin:
                self._fragment_opcode, self._fragments = opcode, [data]
                return None
        if opcode == ABNF.OPCODE_TEXT:
            try:
                return bytes(data).decode("utf-8")
            except UnicodeDecodeError as exc:
                self._fail(1007, "invalid UTF-8 in a text message")
                raise ProtocolError("the peer sent invalid UTF-8 in a text message") from exc
        return bytes(data)

    def __iter__(self) -> Iterator[Message]:
        """Messages until the connection closes; a clean close ends the loop."""
        while True:
            try:
                yield self.recv()
            except ConnectionClosed as exc:
                if exc.clean or self._close_sent:
                    return
                raise

    # ------------------------------------------------------------------ closing

    def close(self, code: int = 1000, reason: str = "", timeout: float = 5.0) -> None:
        """Close the connection with ``code`` and ``reason``; returns within ``timeout``.

        Waits briefly for the peer's close frame, then shuts the socket down.
        Safe to call twice and from any thread.
        """
        deadline = time.monotonic() + timeout
        with self._state_lock:
            first = not self._close_sent and not self.closed
            if first:
                self._close_sent = True
                self.close_code, self.close_reason = code, reason
        if first:
            self._try_send_close(code, reason, timeout=min(timeout, 2.0))
            self._await_peer_close(deadline)
        self._closed.set()
        self._shutdown_socket()

    def shutdown_send(self, code: int = 1000, reason: str = "", timeout: float = 2.0) -> None:
        """Half-close: send a close frame now, but keep receiving until the peer's close.

        Later sends raise :class:`ConnectionClosed`; :meth:`recv` keeps returning
        the peer's messages until its close frame arrives (that close is not
        echoed, it answers ours). Call :meth:`close` afterwards to release the
        socket. This is how azbridge signals EOF on one direction of a stream.
        """
        with self._state_lock:
            if self._close_sent or self.closed:
                return
            self._close_sent = True
            self.close_code, self.close_reason = code, reason
        self._try_send_close(code, reason, timeout=timeout)

    def _await_peer_close(self, deadline: float) -> None:
        # If no thread is reading, read the peer's answer ourselves; otherwise the reader will.
        if self._recv_lock.acquire(blocking=False):
            try:
                while not self.closed and time.monotonic() < deadline:
                    try:
                        self._wait_readable(deadline, None)
                        self._next_frame()
                    except (ConnectionClosed, RelayTimeoutError):
                        break
            finally:
                self._recv_lock.release()
        else:
            self._closed.wait(max(0.0, min(deadline - time.monotonic(), 2.0)))

    def _try_send_close(self, code: int, reason: str, timeout: float = 2.0) -> None:
        payload = struct.pack("!H", code) + _close_reason_bytes(reason)
        if not self._send_lock.acquire(timeout=timeout):
            return  # a send is stuck on a dead network; shutting down will unblock it
        try:
            self._ws.send_frame(ABNF.create_frame(payload, ABNF.OPCODE_CLOSE))
        except Exception:  # noqa: BLE001 - the peer may be gone already
            log.debug("could not send close frame on %r", self)
        finally:
            self._send_lock.release()

    def _on_peer_close(self, payload: bytes) -> None:
        code, reason = 1005, ""
        if len(payload) >= 2:
            code = struct.unpack("!H", payload[:2])[0]
            reason = payload[2:].decode("utf-8", "replace")
        with self._state_lock:
            echo = not self._close_sent
            self._close_sent = True
            if echo:  # the peer closed first: its code is the connection's
                self.close_code, self.close_reason = code, reason
        if echo:
            self._try_send_close(code if code != 1005 else 1000, "")
        self._mark_closed(code, reason)
        self._shutdown_socket()

    def _mark_closed(self, code: int, reason: str) -> None:
        with self._state_lock:
            if self.close_code is None:
                self.close_code, self.close_reason = code, reason
            self._closed.set()

    def _fail(self, code: int, reason: str, locked: bool = False) -> None:
        """Fail the connection: send a close frame if we can, then drop the socket.

        Used where waiting for the peer's close would deadlock (we hold the
        receive lock, or the send lock when ``locked``).
        """
        with self._state_lock:
            first = not self._close_sent and not self.closed
            self._close_sent = True
        if first:
            if locked:
                payload = struct.pack("!H", code) + _close_reason_bytes(reason)
                try:
                    self._ws.send_frame(ABNF.create_frame(payload, ABNF.OPCODE_CLOSE))
                except Exception:  # noqa: BLE001 - the peer may be gone already
                    pass
            else:
                self._try_send_close(code, reason, timeout=1.0)
        self._mark_closed(code, reason)
        self._shutdown_socket()

    def abort(self) -> None:
        """Drop the connection at once without a close handshake (wakes blocked readers)."""
        self._mark_closed(_ABNORMAL, "aborted")
        self._shutdown_socket()

    def _shutdown_socket(self) -> None:
        sock = self._ws.sock
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass
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


def _close_reason_bytes(reason: str) -> bytes:
    """At most 123 bytes of UTF-8 (a close frame's limit), cut on a character boundary."""
    return reason.encode("utf-8")[:123].decode("utf-8", "ignore").encode("utf-8")


def _split_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Non-empty chunks of at most FRAGMENT_SIZE bytes."""
    for chunk in chunks:
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise TypeError(f"body chunks must be bytes, not {type(chunk).__name__}")
        view = memoryview(chunk)
        for start in range(0, len(view), FRAGMENT_SIZE):
            yield bytes(view[start : start + FRAGMENT_SIZE])
