"""Keep-alive on forwarded connections: an unsolicited WebSocket pong on each tunnel every interval.

An idle tunnel (an SSH session left open) would otherwise be dropped by the
relay after about 4 idle minutes (azure-relay #33). azbridge relies on .NET's
WebSocket keep-alive, which sends unsolicited pongs every ``KeepAliveInterval``
(30 s by default); a pong asks the peer for nothing, and every peer ignores it
(a ping on the control channel got listeners disconnected: azure-relay-dotnet #103).
One thread per forwarder serves all its tunnels: a :class:`hybridconn._keepalive.PongTimer`,
the listener's and the client's keep-alive, at the forwarder's one interval.
"""

from __future__ import annotations

from typing import Optional

from .._keepalive import PongTimer
from ..connection import HybridConnection

__all__ = ["Keepalive", "DEFAULT_INTERVAL"]

#: azbridge's default ``KeepAliveInterval`` (seconds).
DEFAULT_INTERVAL = 30.0


class Keepalive:
    """Sends a pong on every registered connection each ``interval`` seconds (None or 0: never)."""

    def __init__(self, name: str, interval: Optional[float] = DEFAULT_INTERVAL) -> None:
        self.name = name
        self.interval: Optional[float] = interval if interval and interval > 0 else None
        self._timer = PongTimer(f"hybridconn-forward-keepalive-{name}")

    @property
    def sent(self) -> int:
        """Pongs sent so far."""
        return self._timer.sent

    def add(self, conn: HybridConnection) -> None:
        self._timer.add(conn, self.interval)

    def discard(self, conn: HybridConnection) -> None:
        self._timer.discard(conn)

    def close(self, timeout: float = 2.0) -> bool:
        """Stop the thread (bounded)."""
        return self._timer.close(timeout)
