"""What one client may hold of the emulator: connections, and how long it may take to send a request.

The emulator is a network server people run on shared dev boxes and in CI; without these limits
one client with nothing but a TCP connection could hold every file descriptor (idle
connections), every connection thread (a request head sent a byte at a time) or a relayed
request's slot (a body that never ends).

- :attr:`ClientLimits.max_connections_per_client`: connections open at once from one address;
  the one over the limit is answered ``503`` and closed at once, never served.
- :attr:`ClientLimits.head_timeout`: seconds from a new connection (or the first byte of a
  keep-alive connection's next request) to the end of its request head (slowloris).
- :attr:`ClientLimits.body_idle_timeout`: seconds a request body may go without a byte.
- :attr:`ClientLimits.max_uploads_per_client`: relayed requests from one address whose body is
  still streaming to a listener (each holds one of the listener's rendezvous sockets, 128 by
  default); the one over it is answered ``503`` at its head, its body never read. Senders that
  dribble a huge body a byte at a time (never idle long enough for ``body_idle_timeout``) can
  then hold at most this many of a listener's slots, never all of them.
- :attr:`ClientLimits.max_request_body`: a request declaring a larger ``Content-Length`` is
  answered ``413`` at its head and the connection closed (RFC 7230 section 6.6), its body never
  read. None (the default): no limit, as the service documents none. The emulator has to do this,
  not the listener: the relay strips ``Content-Length`` from what it forwards, so a listener only
  learns a body's size by reading it.
"""

from __future__ import annotations

import collections
import logging
import socket
import threading
from dataclasses import dataclass, field
from typing import Dict, Optional

__all__ = ["ClientLimits", "ClientCounter", "default_connections_per_client", "refuse_busy"]

log: logging.Logger = logging.getLogger(__name__)

#: The per-client connection cap without a descriptor limit to derive it from.
MAX_CONNECTIONS_PER_CLIENT = 4096


def default_connections_per_client() -> int:
    """Half this process's file-descriptor limit (at least 16): one client must never be able to
    take every descriptor, the other half is for everyone else. Not lower: on one machine the
    listener's own sockets (one per relayed connection) come from the same address as its
    senders, so a small fixed cap would refuse a busy but healthy listener."""
    try:
        import resource  # POSIX only
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):  # pragma: no cover - Windows
        return MAX_CONNECTIONS_PER_CLIENT
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return MAX_CONNECTIONS_PER_CLIENT
    return max(16, soft // 2)


@dataclass(frozen=True)
class ClientLimits:
    """Per-client caps (see the module's documentation). ``0`` turns a cap off."""

    max_connections_per_client: int = field(default_factory=default_connections_per_client)
    head_timeout: float = 30.0
    body_idle_timeout: float = 30.0
    max_uploads_per_client: int = 64
    max_request_body: Optional[int] = None

    def __post_init__(self) -> None:
        for name in ("max_connections_per_client", "max_uploads_per_client"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) < 0:
                raise ValueError(f"{name} must be 0 (no cap) or a positive number")
        if self.max_request_body is not None and (isinstance(self.max_request_body, bool) or self.max_request_body < 0):
            raise ValueError("max_request_body must be None (no limit) or a number of bytes")
        for name in ("head_timeout", "body_idle_timeout"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be a positive number of seconds")


class ClientCounter:
    """Connections open per client address, under one lock."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._lock = threading.Lock()
        self._open: Dict[str, int] = collections.defaultdict(int)
        self.refused = 0  # connections refused over the cap, for logs and tests

    def acquire(self, address: str) -> bool:
        """Count a new connection from ``address``; False (nothing counted) when it is over the cap."""
        with self._lock:
            if self.cap and self._open[address] >= self.cap:
                self.refused += 1
                return False
            self._open[address] += 1
            return True

    def release(self, address: str) -> None:
        with self._lock:
            left = self._open[address] - 1
            if left > 0:
                self._open[address] = left
            else:
                self._open.pop(address, None)

    def open_from(self, address: str) -> int:
        with self._lock:
            return self._open.get(address, 0)


_BUSY_TEXT = b"Too many connections from this client.\r\n"
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
         b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_BUSY_TEXT), _BUSY_TEXT))


def refuse_busy(sock: socket.socket) -> None:
    """Answer a connection that will not be served with a 503, without reading or waiting, and close it."""
    try:
        sock.setblocking(False)
        sock.send(_BUSY)  # best effort: a full buffer just means the client sees the close
    except OSError:
        pass
    finally:
        try:
            sock.close()
        except OSError:
            pass
