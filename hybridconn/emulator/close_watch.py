"""Drops WebSockets whose peer did not answer our close in time, so no reader has to wake to check.

A close frame is often sent by a thread that is not the channel's reader (the other pump of a
relayed WebSocket, a sender's thread ending its rendezvous link, a token expiry). The reader,
blocked in ``poll``, cannot see the deadline that close set. It used to wake every few seconds
to look, whatever it was doing: at 5,000 relayed WebSockets that is 10,000 threads waking in
turn, two thousand GIL hand-overs a second, and the emulator spent both cores in the kernel on
futex wake-ups and stopped answering (measured: 3,500 connections in, 98 % system time,
handshakes timing out). Here one thread keeps the deadlines in a heap and, when one passes
unanswered, shuts that channel's socket down, which wakes its reader at once. The thread runs
only while a close is unanswered (a channel that ends is forgotten at once) and is stopped by the
emulator's ``stop()``.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import List, Optional, Protocol, Set, Tuple

__all__ = ["CloseWatch", "Closing"]

log: logging.Logger = logging.getLogger(__name__)


class Closing(Protocol):
    """What the watch needs of a channel (:class:`~hybridconn.emulator.ws.WsChannel` has it)."""

    def close_overdue(self, now: float) -> Optional[float]:
        """Drop the channel if its close is unanswered past its deadline; the deadline if it moved past ``now``."""


class CloseWatch:
    """Deadlines of unanswered close frames; one named thread, started on the first, ends each late one."""

    def __init__(self, name: str = "hybridconn-emulator-close-watch") -> None:
        self._name = name
        self._cond = threading.Condition()
        self._heap: List[Tuple[float, int, Closing]] = []
        self._order = itertools.count()  # ties: channels are not comparable
        self._watched: Set[Closing] = set()  # channels whose close is unanswered
        self._thread: Optional[threading.Thread] = None
        self._closed = False

    def watch(self, channel: Closing, deadline: float) -> None:
        """Drop ``channel`` at ``deadline`` (``time.monotonic()``) unless its close was answered by then."""
        with self._cond:
            if self._closed:
                return  # the emulator is closing: every socket is being dropped anyway
            first = not self._heap or deadline < self._heap[0][0]
            heapq.heappush(self._heap, (deadline, next(self._order), channel))
            self._watched.add(channel)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            elif first:
                self._cond.notify()

    def forget(self, channel: Closing) -> None:
        """``channel`` ended (its close was answered, or it was dropped): nothing to watch any more."""
        with self._cond:
            if channel in self._watched:
                self._watched.discard(channel)
                if not self._watched:
                    self._heap.clear()
                    self._cond.notify()  # nothing left: the thread ends now, not at the last deadline

    @property
    def pending(self) -> int:
        """Channels whose close is still unanswered."""
        with self._cond:
            return len(self._watched)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread (bounded by ``timeout``); deadlines still pending are forgotten."""
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._watched.clear()
            thread = self._thread
            self._cond.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed or not self._heap:
                        self._thread = None  # a later watch() starts a new one
                        return
                    deadline, _, channel = self._heap[0]
                    if channel not in self._watched:
                        heapq.heappop(self._heap)  # ended since: skip it
                        continue
                    left = deadline - time.monotonic()
                    if left <= 0:
                        heapq.heappop(self._heap)
                        self._watched.discard(channel)
                        break
                    self._cond.wait(left)
            later = channel.close_overdue(time.monotonic())
            if later is not None:  # the deadline moved (a half-closed peer still sending)
                self.watch(channel, later)
