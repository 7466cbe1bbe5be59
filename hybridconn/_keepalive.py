"""Keep-alive for long-lived relayed WebSockets: an unsolicited Pong on each one, every interval.

Azure drops a connection that carries nothing for about four minutes (azure-relay #33), without
telling either end. Microsoft's clients keep their sockets alive with unsolicited Pongs (.NET's
``KeepAliveInterval``; hyco-https ``pong()`` every ``keepAliveTimeout``): a Pong asks the peer
for nothing and every RFC 6455 peer ignores it, where a Ping got listeners disconnected
(azure-relay-dotnet #103). The forwarder's tunnels use it too (:mod:`hybridconn.forward.keepalive`).

One :class:`PongTimer` (one named thread, started with the first connection, stopped by
:meth:`PongTimer.close`) serves every socket of its listener or client, each at its own
interval, from a heap: thousands of sockets cost one thread and a few bytes each.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import List, Optional, Tuple

from .connection import HybridConnection
from .exceptions import ConfigurationError, HybridConnectionError

__all__ = ["PongTimer", "check_keepalive"]

log: logging.Logger = logging.getLogger(__name__)


def check_keepalive(seconds: Optional[float]) -> Optional[float]:
    """``seconds`` as a keep-alive interval (None or 0: none); ``ConfigurationError`` when negative."""
    if seconds is None or seconds == 0:
        return None
    if seconds < 0:
        raise ConfigurationError("keepalive must be a positive number of seconds (or None)")
    return float(seconds)


class PongTimer:
    """Sends an unsolicited Pong on each registered connection every its interval, until it closes.

    :param thread_name: the timer thread's name (``hybridconn-...``).
    """

    def __init__(self, thread_name: str) -> None:
        self.thread_name = thread_name
        self.sent = 0
        self._heap: List[Tuple[float, int, float, HybridConnection]] = []
        self._count = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self._thread: Optional[threading.Thread] = None

    def add(self, conn: HybridConnection, interval: Optional[float]) -> bool:
        """Keep ``conn`` alive with a Pong every ``interval`` seconds (None: not at all).

        Closed connections leave by themselves. False when the timer is closed (or no interval).
        """
        if not interval or interval <= 0:
            return False
        with self._cond:
            if self._closed:
                return False
            heapq.heappush(self._heap, (time.monotonic() + interval, next(self._count), interval, conn))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
                self._thread.start()
            self._cond.notify()
        return True

    def discard(self, conn: HybridConnection) -> None:
        """Stop keeping ``conn`` alive (a closed one leaves by itself)."""
        with self._cond:
            kept = [item for item in self._heap if item[3] is not conn]
            if len(kept) != len(self._heap):
                heapq.heapify(kept)
                self._heap = kept

    @property
    def watched(self) -> int:
        """How many connections are kept alive now."""
        with self._cond:
            return len(self._heap)

    def _due(self) -> Optional[Tuple[float, HybridConnection]]:
        """The next connection whose Pong is due (waiting for it), or None once closed."""
        with self._cond:
            while not self._closed:
                if not self._heap:
                    self._cond.wait()
                    continue
                due, _, interval, conn = self._heap[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                if conn.closed:
                    continue
                heapq.heappush(self._heap, (max(due + interval, time.monotonic()), next(self._count), interval, conn))
                return interval, conn
            return None

    def _run(self) -> None:
        while True:
            item = self._due()
            if item is None:
                return
            conn = item[1]
            try:
                conn.pong(b"", timeout=1.0)  # the send lock: a socket busy sending needs no keep-alive
                self.sent += 1
            except (HybridConnectionError, OSError) as exc:
                log.debug("keep-alive pong on connection %s failed: %s", conn.id, exc)

    def close(self, timeout: float = 2.0) -> bool:
        """Stop the timer (bounded by ``timeout``); True when its thread has ended."""
        with self._cond:
            self._closed = True
            self._heap.clear()
            thread = self._thread
            self._cond.notify_all()
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(max(0.0, timeout))
        return not thread.is_alive()
