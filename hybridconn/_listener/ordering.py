"""Per-connection ordering for the multiplexed WebSocket mode: each connection's work one at a time, in order.

Every multiplexed connection has a :class:`Lane`: a queue of its work (open,
its messages, close). The :class:`Scheduler` keeps the lanes that have work
in one ready queue and runs them on the listener's pool with at most
``runners`` tasks: a runner takes a lane, runs *one* item of it, and puts the
lane back at the end of the ready queue if it has more. So a lane is never
run by two threads at once (its items keep their order), every busy
connection gets its turn (one chatty connection cannot starve the others),
and a slow handler holds one runner, never the others.

Back-pressure: :meth:`Scheduler.push` says when a lane holds ``high`` items
or more; the reader then stops reading that socket (TCP pushes back to the
sender) until a runner has brought the lane down to ``low``, when
``on_resume`` asks the reader to watch it again. Memory stays bounded per
connection whatever a handler's speed.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any, Callable, Deque, Iterable

from .pool import WorkPool

__all__ = ["Lane", "Scheduler", "RUNNER_BATCH"]

log = logging.getLogger(__name__)

#: Items a runner task runs before it hands its pool thread back (queued HTTP requests and
#: accepts get their turn on a busy listener); it resubmits itself if work remains.
RUNNER_BATCH = 64


class Lane:
    """One connection's queue of work. ``fd`` belongs to the reader thread, the rest to the scheduler."""

    __slots__ = ("conn", "items", "scheduled", "paused", "fd", "ended")  # one per connection: keep it small

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.items: Deque[Any] = deque()
        self.scheduled = False  # in the ready queue or being run: no second runner may take it
        self.paused = False  # over the high mark: the reader stopped reading its socket
        self.fd = -1  # the descriptor it is watched under by the reader's selector, or -1
        self.ended = False  # its close item was queued: nothing more comes

    def __repr__(self) -> str:
        return f"<Lane {self.conn!r} items={len(self.items)} paused={self.paused}>"


class Scheduler:
    """Runs lanes' items on ``pool`` (kind ``ws``), one item per lane at a time, round robin.

    :param serve: ``serve(lane, item)`` runs one item (in a pool thread).
    :param on_resume: ``on_resume(lane)``: a paused lane is down to ``low`` items (called in a pool thread).
    """

    def __init__(self, pool: WorkPool, runners: int, *, high: int, low: int,
                 serve: Callable[[Lane, Any], None], on_resume: Callable[[Lane], None]) -> None:
        if not 0 <= low < high:
            raise ValueError("need 0 <= low < high")
        self._pool = pool
        self._max_runners = max(1, runners)
        self.high, self.low = high, low
        self._serve = serve
        self._on_resume = on_resume
        self._lock = threading.Lock()
        self._ready: Deque[Lane] = deque()
        self._runners = 0  # runner tasks submitted and not finished
        self._busy = 0  # runners inside an item

    @property
    def stalled(self) -> bool:
        """Lanes wait but no runner is on them (the pool was full): :meth:`kick` later."""
        with self._lock:
            return bool(self._ready) and self._runners == 0

    def push(self, lane: Lane, items: Iterable[Any]) -> bool:
        """Queue ``items`` on ``lane``; True when the lane is now paused (stop reading its socket)."""
        with self._lock:
            lane.items.extend(items)
            if not lane.scheduled and lane.items:
                lane.scheduled = True
                self._ready.append(lane)
            if len(lane.items) >= self.high and not lane.ended:
                lane.paused = True
            paused = lane.paused
        self.kick()
        return paused

    def kick(self) -> None:
        """Start runners while lanes wait with no free runner for them, up to the limit (a full pool
        refuses: the reader tries again later, see :attr:`stalled`)."""
        while True:
            with self._lock:
                free = self._runners - self._busy  # runners between two items, about to take a lane
                if len(self._ready) <= free or self._runners >= self._max_runners:
                    return
                self._runners += 1
            if not self._pool.submit("ws", self._run):
                with self._lock:
                    self._runners -= 1
                return

    def _run(self) -> None:
        """A runner: one item of the next ready lane at a time; after :data:`RUNNER_BATCH` items it
        hands over to a fresh task at the back of the pool's queue (or, the pool full, goes on)."""
        while True:
            for _ in range(RUNNER_BATCH):
                with self._lock:
                    if not self._ready:
                        self._runners -= 1
                        return
                    lane = self._ready.popleft()
                    item = lane.items.popleft()
                    self._busy += 1
                try:
                    self._serve(lane, item)
                finally:
                    self._after(lane)
            if self._pool.submit("ws", self._run):
                return

    def _after(self, lane: Lane) -> None:
        with self._lock:
            self._busy -= 1
            if lane.items:
                self._ready.append(lane)
            else:
                lane.scheduled = False
            resume = lane.paused and len(lane.items) <= self.low
            if resume:
                lane.paused = False
        if resume:
            self._on_resume(lane)
