"""The multiplexed WebSocket mode: one poll-based reader thread for every accepted socket.

With ``@listener.on_message`` set, an accepted WebSocket is not given a pool
thread for its life (``on_connection``'s model, one thread per socket).
Instead the :class:`Multiplexer`'s one thread (``hybridconn-mux-<name>``)
watches every such socket with a ``selectors`` selector (epoll on Linux; no
descriptor limit), reads whatever arrives, and hands each connection's work
to the :class:`~.ordering.Scheduler`: ``on_open(conn)`` first, then
``on_message(conn, message)`` for each message in order, one at a time, then
``on_close(conn)``, all in pool threads. Threads: ``max_workers`` plus this
one, whatever the number of sockets.

The reader thread owns the selector: others talk to it through a command
queue and a wake-up socket pair. A socket whose lane is over its high mark is
unwatched until a runner drains it (back-pressure); a socket a handler closed
is found at the next read or by a sweep every second (its descriptor number
may be reused by the next accept, which ends the stale lane first).
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Tuple

from .._deadline import Deadline
from ..exceptions import ConnectionClosed
from .accepting import SocketTracker
from .hooks import Hooks
from .ordering import Lane, Scheduler
from .polled import PolledConnection
from .pool import WorkPool

__all__ = ["Multiplexer", "OPEN", "CLOSE", "MAX_QUEUED"]

log = logging.getLogger(__name__)



class _Event:
    """A lane's first and last items (the others are messages)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


OPEN, CLOSE = _Event("open"), _Event("close")
#: Messages queued for one connection before its socket is no longer read (back-pressure).
MAX_QUEUED = 32
_SWEEP = 1.0  # seconds between looks for sockets closed by handlers (and idle waits)
_RETRY = 0.05  # seconds before a busy socket or a stalled scheduler is tried again


class Multiplexer:
    """Reads every multiplexed socket of one listener in one thread; its handlers run in ``pool``.

    :param sockets: tracks each socket until its lane ends (the listener's close() closes them).
    :param runners: pool tasks serving lanes at most (the listener's ``max_workers``).
    """

    def __init__(self, name: str, pool: WorkPool, hooks: Hooks, sockets: SocketTracker, *, runners: int,
                 max_queued: int = MAX_QUEUED) -> None:
        self.name = name
        self._hooks = hooks
        self._sockets = sockets
        self._scheduler = Scheduler(pool, runners, high=max_queued, low=max_queued // 2, serve=self._serve,
                                    on_resume=lambda lane: self._command("resume", lane))
        self._lock = threading.Lock()
        self._commands: Deque[Tuple[str, Lane]] = deque()
        self._selector: Optional[selectors.BaseSelector] = None
        self._wake: Optional[Tuple[socket.socket, socket.socket]] = None
        self._thread: Optional[threading.Thread] = None
        self._stopping = False
        self._lanes: Dict[int, Lane] = {}  # by descriptor; the reader thread's own
        self._retry: List[Lane] = []
        self._next_sweep = 0.0
        self._open = 0

    @property
    def connections(self) -> int:
        """Multiplexed sockets open now."""
        return self._open

    # ------------------------------------------------------------------ from other threads

    def add(self, conn: PolledConnection) -> bool:
        """Serve ``conn``: ``on_open`` is queued now, its socket watched from the reader's next turn.
        False when closing (the caller closes ``conn``)."""
        lane = Lane(conn)
        with self._lock:
            if self._stopping:
                return False
            self._start()
            self._open += 1
        self._scheduler.push(lane, [OPEN])
        self._command("add", lane)
        return True

    def _start(self) -> None:
        """The selector, wake-up pair and reader thread, made at the first socket (lock held)."""
        if self._thread is not None:
            return
        self._selector = selectors.DefaultSelector()
        self._wake = socket.socketpair()
        for end in self._wake:
            end.setblocking(False)
        self._selector.register(self._wake[0], selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._loop, name=f"hybridconn-mux-{self.name}", daemon=True)
        self._thread.start()

    def _command(self, what: str, lane: Lane) -> None:
        with self._lock:
            self._commands.append((what, lane))
            wake = self._wake
        if wake is not None:
            with contextlib.suppress(OSError):  # full (the reader is waking anyway) or closed
                wake[1].send(b"\0")

    def close(self, until: Deadline) -> bool:
        """Stop reading (the sockets stay with their tracker, which closes them); True when the thread ended."""
        with self._lock:
            self._stopping = True
            thread, wake = self._thread, self._wake
        if wake is not None:
            with contextlib.suppress(OSError):
                wake[1].send(b"\0")
        if thread is not None and thread is not threading.current_thread():
            until.join(thread)
            if thread.is_alive():
                return False
        self._release()
        return True

    def _release(self) -> None:
        with self._lock:
            selector, wake, self._selector, self._wake = self._selector, self._wake, None, None
        if selector is not None:
            selector.close()
        for end in wake or ():
            end.close()

    # ------------------------------------------------------------------ the reader thread

    def _loop(self) -> None:
        selector = self._selector
        assert selector is not None
        try:
            while not self._stopping:
                self._run_commands()
                waiting = bool(self._retry) or self._scheduler.stalled
                for key, _ in selector.select(_RETRY if waiting else _SWEEP):
                    if key.data is None:
                        self._drain_wake()
                    else:
                        self._read(key.data)
                self._housekeeping()
        except Exception:  # noqa: BLE001 - logged; the listener's close() still closes every socket
            log.exception("the multiplexed reader of %s failed", self.name)

    def _drain_wake(self) -> None:
        wake = self._wake
        with contextlib.suppress(OSError):
            while wake is not None and wake[0].recv(4096):
                pass

    def _run_commands(self) -> None:
        while True:
            with self._lock:
                if not self._commands:
                    return
                what, lane = self._commands.popleft()
            if what == "add":
                stale = self._lanes.get(lane.conn.fileno())
                if stale is not None:  # its socket was closed by a handler and its number reused
                    self._end(stale)
                self._watch(lane)
            elif not lane.ended:  # resume
                self._watch(lane)

    def _watch(self, lane: Lane) -> None:
        fd = lane.conn.fileno()
        if fd < 0:
            self._end(lane)
            return
        if lane.fd >= 0 or lane.ended:
            return
        assert self._selector is not None
        try:
            self._selector.register(fd, selectors.EVENT_READ, lane)
        except (OSError, ValueError):  # a handler closed it between fileno() and here (EBADF)
            self._end(lane)
            return
        self._lanes[fd] = lane
        lane.fd = fd

    def _unwatch(self, lane: Lane) -> None:
        fd, lane.fd = lane.fd, -1
        if fd < 0 or self._lanes.get(fd) is not lane:
            return
        del self._lanes[fd]
        assert self._selector is not None
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(fd)  # a closed descriptor's epoll entry is gone already: fine

    def _read(self, lane: Lane) -> None:
        result = lane.conn.receive_ready()
        if result is None:  # a close() in another thread is reading the peer's answer
            self._unwatch(lane)
            self._retry.append(lane)
            return
        messages, still_open = result
        if messages and self._scheduler.push(lane, messages) and still_open:
            self._unwatch(lane)  # back-pressure: the runner resumes it below the low mark
        if not still_open:
            self._end(lane)

    def _end(self, lane: Lane) -> None:
        """The connection is over: stop watching it and queue ``on_close`` after its messages."""
        self._unwatch(lane)
        if lane.ended:
            return
        lane.ended = True
        self._scheduler.push(lane, [CLOSE])

    def _housekeeping(self) -> None:
        retry, self._retry = self._retry, []
        for lane in retry:
            if lane.conn.closed:
                self._read(lane)
            else:
                self._watch(lane)
        self._scheduler.kick()
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + _SWEEP
            for lane in [lane for lane in self._lanes.values() if lane.conn.closed]:
                self._end(lane)  # closed by a handler: no more readiness may come for it

    # ------------------------------------------------------------------ in pool threads

    def _serve(self, lane: Lane, item: Any) -> None:
        conn = lane.conn
        if item is CLOSE:
            self._finish(lane)
            return
        hooks = self._hooks
        try:
            if item is OPEN:
                if hooks.on_open is not None:
                    hooks.on_open(conn)
            elif hooks.on_message is not None:  # also after the peer's close: the message came before it
                hooks.on_message(conn, item)
        except ConnectionClosed as exc:
            log.debug("connection %s closed under its handler: %s", conn.id, exc)
        except Exception:  # noqa: BLE001 - a handler crash closes its socket with 1011
            log.exception("%s handler failed for connection %s", "on_open" if item is OPEN else "on_message", conn.id)
            conn.close(1011, "handler error", timeout=2.0)

    def _finish(self, lane: Lane) -> None:
        conn = lane.conn
        try:
            if not conn.closed:
                conn.close(1000, "", timeout=2.0)
            if self._hooks.on_close is not None:
                self._hooks.on_close(conn)
        except Exception:  # noqa: BLE001 - a callback must never break the listener
            log.exception("on_close handler failed for connection %s", conn.id)
        finally:
            self._sockets.forget(conn)
            with self._lock:
                self._open -= 1
