"""TCP options that let the kernel find a dead network path on a long-lived socket.

A path that silently drops every packet (no FIN, no RST) leaves a TCP socket
open for as long as the kernel keeps retransmitting (15 minutes or more on
Linux). Two options bound that:

* ``TCP_USER_TIMEOUT`` (Linux): data left unacknowledged for ``timeout``
  seconds kills the connection (``ETIMEDOUT``). The listener's keep-alive frame
  is such data, so the socket dies within ``interval + timeout`` of the path.
* TCP keepalive (``SO_KEEPALIVE`` with idle/interval/count), the fallback where
  ``TCP_USER_TIMEOUT`` does not exist (macOS, Windows): probes after ``interval``
  seconds of silence, the connection dropped after about ``timeout`` more.

Both are best effort: a socket type or platform that refuses an option keeps
the others (logged at debug level).
"""

from __future__ import annotations

import logging
import math
import socket
from typing import Any, List

__all__ = ["detect_dead_path", "KEEPALIVE_PROBES"]

log = logging.getLogger(__name__)

#: Keepalive probes sent before the kernel gives up on the connection.
KEEPALIVE_PROBES = 3


def detect_dead_path(sock: Any, interval: float, timeout: float) -> List[str]:
    """Set the options on ``sock`` (a socket or an SSL socket); returns the names of those set."""
    if sock is None:
        return []
    idle = max(1, int(math.ceil(interval)))
    probe_every = max(1, int(math.ceil(timeout / KEEPALIVE_PROBES)))
    wanted = [
        (socket.SOL_SOCKET, "SO_KEEPALIVE", 1),
        (socket.IPPROTO_TCP, "TCP_USER_TIMEOUT", max(1, int(timeout * 1000))),
        (socket.IPPROTO_TCP, "TCP_KEEPIDLE", idle),
        (socket.IPPROTO_TCP, "TCP_KEEPALIVE", idle),  # macOS's name for TCP_KEEPIDLE
        (socket.IPPROTO_TCP, "TCP_KEEPINTVL", probe_every),
        (socket.IPPROTO_TCP, "TCP_KEEPCNT", KEEPALIVE_PROBES),
    ]
    done: List[str] = []
    for level, name, value in wanted:
        option = getattr(socket, name, None)
        if option is None:
            continue
        try:
            sock.setsockopt(level, option, value)
        except (OSError, ValueError) as exc:
            log.debug("could not set %s on a socket: %s", name, exc)
            continue
        done.append(name)
    return done
