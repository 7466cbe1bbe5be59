"""Pump bytes both ways between a TCP socket and a relayed WebSocket, as azbridge does.

Wire rules (azbridge's StreamPump over HybridConnectionStream):

- Each socket read of at most 64 KiB becomes one binary message. An empty
  message is never sent: azbridge reads a zero-length message as end of stream.
- Incoming messages of any size are written to the socket; a text message is
  taken as its UTF-8 bytes; an empty message, or a close frame, is end of stream.
- EOF from the socket is sent as a close frame with code 1000 ("Shutdown").

Half-close and websocket-client
-------------------------------
A WebSocket has no half-close; azbridge uses the close frame as one: after
sending Close(1000) it keeps *reading*, and after *receiving* a Close it keeps
*sending* until its own socket reaches EOF. websocket-client itself only moves
frames, so what we can do is decided by :class:`~hybridconn.HybridConnection`:

- **Our socket reaches EOF first** (the TCP peer shut down its sending side):
  we send Close(1000, "Shutdown") with ``HybridConnection.shutdown_send()``
  and keep forwarding the other direction until the peer's close arrives.
  With azbridge on the other end this is a true half-close (it shuts down
  its target's sending side and keeps sending the answer).
- **The peer's Close arrives first**: the bridge sets
  ``HybridConnection.defer_close_answer``, so the close is not echoed and the
  WebSocket stays open for sending. We shut down our TCP socket's sending
  side only (the TCP peer gets EOF) and keep forwarding what it still sends;
  its EOF becomes our close, which answers the peer's and ends the
  handshake. The relay passes closes on end to end, so a half-closed TCP
  exchange (``shutdown(SHUT_WR)`` then read the answer) loses nothing, with
  hybridconn or azbridge on either end.

Errors (a reset, a dead relay) end both directions: the WebSocket is closed or
aborted and the TCP socket shut down, which the far end sees as EOF, as with
azbridge (nothing on the wire tells an abort from a close).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Optional

from ..connection import HybridConnection
from ..exceptions import ConnectionClosed, HybridConnectionError

__all__ = ["MAX_MESSAGE", "StreamBridge"]

log: logging.Logger = logging.getLogger(__name__)

#: Largest message we send: azbridge reads and writes 64 KiB at a time.
MAX_MESSAGE = 64 * 1024
_SHUTDOWN_REASON = "Shutdown"


class StreamBridge:
    """One forwarded connection: a TCP socket and a relayed WebSocket, pumped both ways.

    :meth:`run` pumps the WebSocket-to-socket direction in the calling thread
    and the socket-to-WebSocket direction in a thread named
    ``hybridconn-forward-<name>-up``; it returns when both are done, with the
    socket and the WebSocket closed. :meth:`abort` (from any thread) ends it.
    """

    def __init__(self, sock: socket.socket, conn: HybridConnection, name: str) -> None:
        self.sock = sock
        self.conn = conn
        conn.defer_close_answer = True  # a close from the peer is a half-close: keep sending
        self.name = name
        self.bytes_up: int = 0  # socket -> WebSocket
        self.bytes_down: int = 0  # WebSocket -> socket
        self._aborted = threading.Event()
        self._done = threading.Event()
        self._upstream: Optional[threading.Thread] = None

    def __repr__(self) -> str:
        return f"<StreamBridge {self.name} up={self.bytes_up} down={self.bytes_down}>"

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def run(self, initial_down: bytes = b"") -> None:
        """Pump until both directions end; then close both ends.

        :param initial_down: bytes that arrived with the preamble exchange and
            belong to the socket before anything else.
        """
        try:
            self._upstream = threading.Thread(
                target=self._pump_up, name=f"hybridconn-forward-{self.name}-up", daemon=True
            )
            self._upstream.start()
            if initial_down:
                self._write_down(initial_down)
            if not self._aborted.is_set():
                self._pump_down()
            self._upstream.join()
        finally:
            self._finish()

    def abort(self) -> None:
        """End both directions now (thread-safe, returns at once)."""
        self._aborted.set()
        self.conn.abort()
        _shutdown(self.sock, socket.SHUT_RDWR)

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until :meth:`run` has finished; True if it has."""
        return self._done.wait(timeout)

    # ------------------------------------------------------------------ directions

    def _pump_up(self) -> None:
        """Socket -> WebSocket: at most 64 KiB per binary message; EOF -> Close(1000)."""
        sock, conn = self.sock, self.conn
        while not self._aborted.is_set():
            try:
                data = sock.recv(MAX_MESSAGE)
            except OSError as exc:
                # A reset from the TCP peer: azbridge turns it into a normal close.
                log.debug("%s: socket read failed: %s", self.name, exc)
                data = b""
            if not data:
                log.debug("%s: socket EOF after %d bytes; half-closing the WebSocket", self.name, self.bytes_up)
                conn.shutdown_send(1000, _SHUTDOWN_REASON)
                return
            try:
                conn.send(data)
            except ConnectionClosed:
                # The peer closed (or the link died): nothing more can be delivered.
                log.debug("%s: WebSocket closed while sending", self.name)
                _shutdown(sock, socket.SHUT_RDWR)
                return
            self.bytes_up += len(data)

    def _pump_down(self) -> None:
        """WebSocket -> socket until an empty message, a close, or an error."""
        conn = self.conn
        while not self._aborted.is_set():
            try:
                message = conn.recv()
            except ConnectionClosed as exc:
                self._on_ws_closed(exc)
                return
            except HybridConnectionError as exc:  # e.g. invalid UTF-8 in a text message
                log.debug("%s: WebSocket error: %s", self.name, exc)
                self.abort()
                return
            if isinstance(message, str):
                message = message.encode("utf-8")
            if not message:
                # azbridge's end-of-stream marker (a zero-length read).
                log.debug("%s: empty message = EOF from the peer", self.name)
                _shutdown(self.sock, socket.SHUT_WR)
                return
            if not self._write_down(message):
                return

    def _write_down(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            log.debug("%s: socket write failed: %s", self.name, exc)
            # The TCP peer is gone: stop the other direction too.
            self.abort()
            return False
        self.bytes_down += len(data)
        return True

    def _on_ws_closed(self, exc: ConnectionClosed) -> None:
        if not self.conn.closed:
            # The peer closed first (a half-close): EOF to the TCP peer; the upstream
            # pump forwards the rest of its data, and its EOF answers the close.
            log.debug("%s: the peer half-closed (%s); EOF to the socket", self.name, exc)
            _shutdown(self.sock, socket.SHUT_WR)
            # Watch the WebSocket meanwhile: if the peer gives up waiting for our
            # answer (drops the socket), the socket -> WebSocket direction must end too.
            while not self._aborted.is_set() and not self.conn.await_transport_end(1.0):
                pass
            if self._upstream is not None and self._upstream.is_alive():
                _shutdown(self.sock, socket.SHUT_RDWR)
            return
        # The answer to our own half-close, or the link died: EOF both
        # ways (this also wakes the upstream pump if it is still reading).
        log.debug("%s: WebSocket closed (%s)", self.name, exc)
        _shutdown(self.sock, socket.SHUT_RDWR)

    # ------------------------------------------------------------------ teardown

    def _finish(self) -> None:
        started = time.monotonic()
        try:
            if self._aborted.is_set():
                self.conn.abort()
            else:
                self.conn.close(1000, _SHUTDOWN_REASON, timeout=5.0)
        except Exception:  # noqa: BLE001 - closing must not raise out of a pump
            log.debug("%s: error closing the WebSocket", self.name, exc_info=True)
        try:
            self.sock.close()
        except OSError:
            pass
        log.debug(
            "%s: done, %d bytes up, %d bytes down (teardown %.3f s)",
            self.name,
            self.bytes_up,
            self.bytes_down,
            time.monotonic() - started,
        )
        self._done.set()


def _shutdown(sock: socket.socket, how: int) -> None:
    try:
        sock.shutdown(how)
    except OSError:
        pass  # already closed or not connected
