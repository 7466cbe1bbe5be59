"""Wait for one socket to become readable, for any file descriptor number, and read it.

:func:`recv_some` is the read step of both WebSocket ends
(:class:`hybridconn.connection.HybridConnection` and the emulator's
``WsChannel``): their frame parsers take whatever it returns.

Reads and writes go through the socket object, never ``os.read``/``os.write`` on its
``fileno()``: another thread may close the socket between the two calls (the GIL can switch
there), and its descriptor number may at once belong to a new socket, whose peer would then get
our bytes (seen under load: an emulator frame arrived as the request line of the listener's next
accept handshake). ``socket.recv``/``sendall`` read the descriptor inside the call. The extra
``poll`` they make on a socket with a timeout cost no measurable CPU (note-20b).

``select.select`` refuses descriptors at or above FD_SETSIZE (1024 on Linux):
a listener or emulator holding about 500 relayed connections (two sockets
each in the emulator) got ``ValueError`` and dropped the connection. ``poll``
has no such limit; Windows has no ``poll`` but its ``select`` is not limited
by descriptor value, so it stays the fallback there.
"""

from __future__ import annotations

import math
import select
import socket
import ssl
from typing import Optional

__all__ = ["wait_readable", "recv_some", "send_all"]

_HAS_POLL = hasattr(select, "poll")
_READ_EVENTS = (select.POLLIN | select.POLLPRI) if _HAS_POLL else 0


def wait_readable(sock: socket.socket, timeout: Optional[float]) -> bool:
    """True when ``sock`` is readable (or at EOF/error) within ``timeout`` seconds (None: no limit).

    Raises ``OSError``/``ValueError`` for a closed socket, as ``select.select`` does.
    """
    if not _HAS_POLL:
        readable, _, _ = select.select([sock], [], [], timeout)
        return bool(readable)
    poller = select.poll()
    poller.register(sock, _READ_EVENTS)  # ValueError/TypeError-free for a live socket; -1 raises ValueError
    # Round up: a wait of 0.4 ms must not become a 0 ms busy poll.
    millis = None if timeout is None else max(0, math.ceil(timeout * 1000))
    return bool(poller.poll(millis))


def recv_some(sock: socket.socket, timeout: Optional[float], size: int = 65536) -> Optional[bytes]:
    """Up to ``size`` bytes from ``sock``: ``b""`` at EOF or on a dead socket, None on timeout.

    TLS sockets with decrypted bytes already buffered are read at once (poll
    cannot see those bytes).
    """
    pending = getattr(sock, "pending", None)
    if not (pending is not None and pending()):
        try:
            if not wait_readable(sock, timeout):
                return None
        except (OSError, ValueError):
            return b""
    try:
        return sock.recv(size)
    except (socket.timeout, ssl.SSLWantReadError):
        return None
    except (OSError, ValueError):
        return b""


def send_all(sock: socket.socket, data: bytes) -> None:
    """``sock.sendall(data)`` (one name for both WebSocket ends' writes; see the module docstring).

    Raises what ``sendall`` raises (``OSError``, ``socket.timeout`` once the socket's timeout
    passes with the peer not reading).
    """
    sock.sendall(data)
