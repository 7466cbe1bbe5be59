"""Multiplexed accepts: a queue of their own, dialed by a bounded number of pool tasks.

An accept for the multiplexed mode (``on_message``) is one handshake on the accept address and
nothing more: the socket then goes to the multiplexer. Queued as one pool task each (as before),
a burst of senders - 400 connecting at once, measured - filled the handler pool's backlog
(``max_workers`` + ``max_pending``, 272 by default): the rest were refused 503, and the
refusals overflowed their own small pool, so some senders were never answered and got the
relay's 504 after its accept timeout. Here the accepts wait in a deque bounded by
:data:`ACCEPT_BACKLOG` (each is a few hundred bytes), and at most :data:`ACCEPT_DIALS` pool
tasks (never more than ``max_workers``) dial them, :data:`ACCEPTS_PER_TURN` at a time before a
task gives its pool thread back (``on_message`` handlers and HTTP requests queued behind it get
their turn). No thread is added: the dials run on the listener's own pool threads.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Callable, Deque, List, Tuple

from .pool import WorkPool

__all__ = ["DialQueue", "ACCEPT_DIALS", "ACCEPT_BACKLOG", "ACCEPTS_PER_TURN"]

log = logging.getLogger(__name__)

#: Pool tasks dialing multiplexed accepts at once (at most ``max_workers``): as many as dialed
#: before (one pool task per accept), so a burst is not dialed more slowly than it was.
ACCEPT_DIALS = 16
#: Multiplexed accepts waiting for a dial before more are refused 503.
ACCEPT_BACKLOG = 16_384
#: Accepts one task dials before it resubmits itself.
ACCEPTS_PER_TURN = 32

Job = Tuple[Callable[[], None], Callable[[], object]]  # (dial and serve, refuse at close)


class DialQueue:
    """Accepts waiting for a dial; ``runners`` pool tasks at most serve them, oldest first."""

    def __init__(self, pool: WorkPool, runners: int = ACCEPT_DIALS, limit: int = ACCEPT_BACKLOG) -> None:
        self._pool = pool
        self._max_runners = max(1, runners)
        self._limit = limit
        self._lock = threading.Lock()
        self._jobs: Deque[Job] = deque()
        self._runners = 0

    @property
    def waiting(self) -> int:
        """Accepts queued and not yet dialing."""
        with self._lock:
            return len(self._jobs)

    def push(self, serve: Callable[[], None], refuse: Callable[[], object]) -> bool:
        """Queue ``serve`` (``refuse`` answers it instead if the listener closes first); False when full."""
        with self._lock:
            if len(self._jobs) >= self._limit:
                return False
            self._jobs.append((serve, refuse))
            start = self._runners < self._max_runners
            if start:
                self._runners += 1
        if start and not self._pool.submit("ws", self._run):
            with self._lock:
                self._runners -= 1  # the pool is full or closed: a later push (or close) sees to the queue
        return True

    def _run(self) -> None:
        for _ in range(ACCEPTS_PER_TURN):
            with self._lock:
                if not self._jobs:
                    self._runners -= 1
                    return
                serve, _refuse = self._jobs.popleft()
            try:
                serve()
            except Exception:  # noqa: BLE001 - one failed accept must not stop the others
                log.exception("a multiplexed accept failed")
        with self._lock:
            if not self._jobs:
                self._runners -= 1
                return
        if not self._pool.submit("ws", self._run):
            with self._lock:
                self._runners -= 1

    def drop(self) -> List[Callable[[], object]]:
        """Take every queued accept out; the refusals to call for them (the listener is closing)."""
        with self._lock:
            jobs, self._jobs = list(self._jobs), deque()
        return [refuse for _serve, refuse in jobs]
