"""The handler threads: a bounded pool with a bounded backlog, one wake-up per task.

When the backlog is full, :meth:`WorkPool.submit` says no at once (the caller
answers 503, see :mod:`.admission`) instead of queueing without bound. Work is
tagged with a kind (``http`` or ``ws``) so that closing can wait for HTTP
handlers while WebSocket handlers, which run until their socket closes, are
still going.

Why not ``concurrent.futures.ThreadPoolExecutor`` (used before): every submit made a
``Future`` (a ``Condition`` of its own), a work item, a queue put and a done callback, and
the pool counted work under its own condition four times per task: py-spy put
``ThreadPoolExecutor.submit`` at 31 % of the listener's CPU per small relayed request. Here a
submit hands the task straight to an idle thread (its own lock, released once: one wake-up), or
starts a thread while fewer than ``max_workers`` run, or queues it; a thread that finishes a task
takes the next queued one without any wake-up. Threads are named as the executor named them
(``hybridconn-<role>-<name>_N``), started on demand and stopped by :meth:`WorkPool.close`.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import Any, Callable, Deque, Iterable, List, Optional, Tuple, Union

from .._deadline import Deadline

__all__ = ["WorkPool", "KINDS"]

log = logging.getLogger(__name__)

KINDS = ("http", "ws")
DeadlineLike = Union[Deadline, float, None]


class _Task:
    """Queued or running work."""

    __slots__ = ("kind", "fn", "args", "on_drop")

    def __init__(self, kind: str, fn: Callable[..., Any], args: Tuple[Any, ...],
                 on_drop: Optional[Callable[[], Any]]) -> None:
        self.kind = kind
        self.fn = fn
        self.args = args
        self.on_drop = on_drop


class _Worker:
    """One pool thread; idle, it waits on ``wake`` for the task :meth:`WorkPool.submit` hands it."""

    __slots__ = ("wake", "task", "thread")

    def __init__(self) -> None:
        self.wake = threading.Lock()
        self.wake.acquire()
        self.task: Optional[_Task] = None  # None when woken: stop
        self.thread: Optional[threading.Thread] = None


class WorkPool:
    """Handler threads (``hybridconn-<role>-<name>_N``) and a count of work in flight.

    ``capacity`` = ``max_workers`` running + ``max_pending`` waiting.
    """

    def __init__(self, name: str, max_workers: int, max_pending: int, role: str = "handler") -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        if max_pending < 0:
            raise ValueError("max_pending must not be negative")
        self._prefix = f"hybridconn-{role}-{name}"
        self._max_workers = max_workers
        self.capacity = max_workers + max_pending
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # idle waits (wait_idle) only
        self._idle_waiters = 0
        self._counts = dict.fromkeys(KINDS, 0)
        self._in_flight = 0
        self._running = 0
        self._backlog: Deque[_Task] = collections.deque()
        self._idle: List[_Worker] = []  # the last to go idle is woken first (its stack is warm)
        self._workers: List[_Worker] = []
        self._started = 0
        self._mine = threading.local()
        self._closed = False
        self._stopping = False  # threads exit instead of going idle

    @property
    def max_workers(self) -> int:
        """Threads at most."""
        return self._max_workers

    @property
    def in_flight(self) -> int:
        """Work queued or running."""
        with self._lock:
            return self._in_flight

    @property
    def running(self) -> int:
        """Work running now (the rest of :attr:`in_flight` waits in the backlog)."""
        with self._lock:
            return self._running

    def in_worker(self) -> bool:
        """True when called from one of this pool's threads."""
        return getattr(self._mine, "kind", None) is not None

    def submit(self, kind: str, fn: Callable[..., Any], *args: Any,
               on_drop: Optional[Callable[[], Any]] = None) -> bool:
        """Queue ``fn(*args)``; False (and nothing queued) when the pool is full or closed.

        ``on_drop`` answers the work instead if it is still queued when :meth:`drop_queued` runs.
        """
        task = _Task(kind, fn, args, on_drop)
        start: Optional[_Worker] = None
        with self._lock:
            if self._closed or self._in_flight >= self.capacity:
                return False
            self._counts[kind] += 1
            self._in_flight += 1
            if self._idle:
                worker = self._idle.pop()
                worker.task = task
                self._running += 1
                worker.wake.release()  # the one wake-up: the task is handed over directly
                return True
            if len(self._workers) < self._max_workers:
                start = _Worker()
                start.task = task
                self._running += 1
                self._workers.append(start)
                self._started += 1
                start.thread = threading.Thread(target=self._work, args=(start,), daemon=True,
                                                name=f"{self._prefix}_{self._started - 1}")
            else:
                self._backlog.append(task)
                return True
        assert start is not None and start.thread is not None
        try:
            start.thread.start()
        except RuntimeError:  # no thread could be started: nothing was queued
            with self._lock:
                self._workers.remove(start)
                self._running -= 1
                self._finished(task)
            return False
        return True

    def _work(self, worker: _Worker) -> None:
        """A pool thread: run the task handed over, then queued ones, then wait idle for the next."""
        mine = self._mine
        task = worker.task
        while task is not None:
            mine.kind = task.kind
            try:
                task.fn(*task.args)
            except Exception:  # noqa: BLE001 - a task must never kill a pool thread silently
                log.exception("unhandled error in a listener task")
            finally:
                mine.kind = None
            with self._lock:
                self._finished(task)
                if self._backlog and not self._stopping:
                    task = self._backlog.popleft()
                    continue
                self._running -= 1
                if self._stopping:
                    break
                worker.task = None
                self._idle.append(worker)
            worker.wake.acquire()
            task = worker.task
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)

    def _finished(self, task: _Task) -> None:
        """Count ``task`` done; ``_lock`` held."""
        self._counts[task.kind] -= 1
        self._in_flight -= 1
        if self._idle_waiters:
            self._cond.notify_all()

    def drop_queued(self) -> List[Callable[[], None]]:
        """Cancel the work not yet started; the ``on_drop`` callbacks of what was cancelled, to call."""
        with self._lock:
            dropped = [task for task in self._backlog if task.on_drop is not None]
            if not dropped:
                return []
            self._backlog = collections.deque(task for task in self._backlog if task.on_drop is None)
            for task in dropped:
                self._finished(task)
        return [task.on_drop for task in dropped if task.on_drop is not None]

    def wait_idle(self, deadline: DeadlineLike, kinds: Iterable[str] = KINDS) -> bool:
        """Wait until no work of ``kinds`` is in flight (the calling task itself excluded)."""
        until = Deadline.coerce(deadline)
        kinds = tuple(kinds)
        own = getattr(self._mine, "kind", None)
        with self._lock:
            while True:
                busy = sum(self._counts[k] for k in kinds) - (1 if own in kinds else 0)
                if busy <= 0:
                    return True
                if until.expired:
                    return False
                self._idle_waiters += 1
                try:
                    self._cond.wait(until.remaining())
                finally:
                    self._idle_waiters -= 1

    def close(self, deadline: DeadlineLike) -> bool:
        """Take no more work, let queued and running work finish until ``deadline``.

        True when every thread has finished. Work still queued at the deadline is
        dropped (call :meth:`drop_queued` first to answer it); a handler still
        running is left to finish on its own.
        """
        with self._lock:
            self._closed = True
        idle = self.wait_idle(deadline)
        with self._lock:
            self._stopping = True
            for task in self._backlog:  # dropped unanswered, as the executor's cancel_futures did
                self._finished(task)
            self._backlog.clear()
            idle_workers, self._idle = self._idle, []
            threads = [w.thread for w in self._workers if w.thread is not None]
        for worker in idle_workers:
            worker.task = None
            worker.wake.release()
        if not idle or self.in_worker():
            return False
        # Every thread is idle or about to be: each exits at once (a short floor past a spent deadline).
        until = Deadline.coerce(deadline)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(until.remaining(floor=1.0))
        return not any(thread.is_alive() for thread in threads)
