"""Wait for one socket to become readable, for any file descriptor number.

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
from typing import Optional

__all__ = ["wait_readable"]

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
