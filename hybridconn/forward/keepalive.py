"""Keep-alive on forwarded connections: an unsolicited WebSocket pong on each tunnel every interval.

An idle tunnel (an SSH session left open) would otherwise be dropped by the
relay after about 4 idle minutes (azure-relay #33). azbridge relies on .NET's
WebSocket keep-alive, which sends unsolicited pongs every ``KeepAliveInterval``
(30 s by default); a pong asks the peer for nothing, and every peer ignores it
(a ping on the control channel got listeners disconnected: azure-relay-dotnet #103).
One thread per forwarder serves all its tunnels.
"""

from __future__ import annotations

import logging
import threading
from typing import Optional, Set

from ..connection import HybridConnection
from ..exceptions import HybridConnectionError

__all__ = ["Keepalive", "DEFAULT_INTERVAL"]

log: logging.Logger = logging.getLogger(__name__)

#: azbridge's default ``KeepAliveInterval`` (seconds).
DEFAULT_INTERVAL = 30.0


class Keepalive:
    """Sends a pong on every registered connection each ``interval`` seconds (None or 0: never)."""

    def __init__(self, name: str, interval: Optional[float] = DEFAULT_INTERVAL) -> None:
        self.name = name
        self.interval: Optional[float] = interval if interval and interval > 0 else None
        self.sent = 0
        self._conns: Set[HybridConnection] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def add(self, conn: HybridConnection) -> None:
        with self._lock:
            self._conns.add(conn)
            if self.interval is None or self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._run, name=f"hybridconn-forward-keepalive-{self.name}",
                                            daemon=True)
            self._thread.start()

    def discard(self, conn: HybridConnection) -> None:
        with self._lock:
            self._conns.discard(conn)

    def _run(self) -> None:
        assert self.interval is not None
        while not self._stop.wait(self.interval):
            with self._lock:
                conns = [c for c in self._conns if not c.closed]
            for conn in conns:
                try:
                    conn.pong(b"", timeout=1.0)  # the send lock: a tunnel busy sending needs no keep-alive
                    self.sent += 1
                except (HybridConnectionError, OSError) as exc:
                    log.debug("forward %s: keep-alive pong failed: %s", self.name, exc)

    def close(self, timeout: float = 2.0) -> bool:
        """Stop the thread (bounded)."""
        self._stop.set()
        with self._lock:
            thread = self._thread
            self._conns.clear()
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True
