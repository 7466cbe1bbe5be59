"""A HybridConnection that one reader thread polls among many (the multiplexed WebSocket mode).

:class:`PolledConnection` is a :class:`~hybridconn.connection.HybridConnection`
(handlers send on it from any thread, close it, read its headers) that the
:class:`~.multiplex.Multiplexer` reads without ever blocking: it reads once
when the selector says the socket is readable and returns the messages those
bytes completed. Its pings are answered only when no other thread is sending
(a send under way shows the peer we are alive), so the one reader thread never
waits behind a handler's send.
"""

from __future__ import annotations

import socket
from typing import List, Optional, Tuple

from ..connection import READ_SIZE, HybridConnection, Message
from ..exceptions import ConnectionClosed, ProtocolError

__all__ = ["PolledConnection"]

_MAX_READ = 1024 * 1024  # bytes per read when a long frame is under way (as HybridConnection reads)


class PolledConnection(HybridConnection):
    """An accepted WebSocket read by the listener's multiplexer; use it as any HybridConnection
    (``send``, ``close``, ``headers``), but never ``recv`` on it: its messages go to ``on_message``."""

    def fileno(self) -> int:
        """The socket's descriptor (-1 once gone)."""
        sock = self._sock
        return -1 if sock is None else sock.fileno()

    def receive_ready(self) -> Optional[Tuple[List[Message], bool]]:
        """Read once what has arrived: ``(messages completed, still open)``.

        None when another thread holds the receive lock (a ``close()`` reading the peer's
        answer): try again later. A close from the peer, EOF, or broken framing ends the
        connection (``still open`` False) after the messages that came before it.
        """
        if not self._recv_lock.acquire(blocking=False):
            return None
        messages: List[Message] = []
        try:
            self._feed_ready()
            while True:
                frame = self._buffered_frame(0)
                if frame is None:
                    return messages, not self.closed
                message = self._message_from(frame)
                if message is not None:
                    messages.append(message)
        except (ConnectionClosed, ProtocolError):
            return messages, False
        finally:
            self._recv_lock.release()

    def _feed_ready(self) -> None:
        """One ``recv`` (the socket polled readable, so it does not wait) into the parser."""
        sock = self._sock
        if sock is None or self.closed:
            self._lost(None)
        try:
            data = sock.recv(min(max(READ_SIZE, self._parser.wanted), _MAX_READ))
        except (BlockingIOError, InterruptedError, socket.timeout):
            return
        except (OSError, ValueError) as exc:
            self._lost(exc)
        if not data:
            self._lost(None)
        self._parser.feed(data)
