"""The handler threads: a ``ThreadPoolExecutor`` with a bounded backlog.

When the backlog is full, :meth:`WorkPool.submit` says no at once (the caller
answers 503, see :mod:`.admission`) instead of queueing without bound. Work is
tagged with a kind (``http`` or ``ws``) so that closing can wait for HTTP
handlers while WebSocket handlers, which run until their socket closes, are
still going.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterable, List, Optional, Union

from .._deadline import Deadline

__all__ = ["WorkPool", "KINDS"]

log = logging.getLogger(__name__)

KINDS = ("http", "ws")
DeadlineLike = Union[Deadline, float, None]


class WorkPool:
    """Handler threads (``hybridconn-<role>-<name>_N``) and a count of work in flight.

    ``capacity`` = ``max_workers`` running + ``max_pending`` waiting.
    """

    def __init__(self, name: str, max_workers: int, max_pending: int, role: str = "handler") -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        if max_pending < 0:
            raise ValueError("max_pending must not be negative")
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix=f"hybridconn-{role}-{name}")
        self.capacity = max_workers + max_pending
        self._cond = threading.Condition()
        self._counts = dict.fromkeys(KINDS, 0)
        self._running = 0
        self._drops: Dict["Future[None]", Callable[[], None]] = {}  # queued work -> how to refuse it
        self._mine = threading.local()
        self._closed = False

    @property
    def in_flight(self) -> int:
        """Work queued or running."""
        with self._cond:
            return sum(self._counts.values())

    @property
    def running(self) -> int:
        """Work running now (the rest of :attr:`in_flight` waits in the backlog)."""
        with self._cond:
            return self._running

    def in_worker(self) -> bool:
        """True when called from one of this pool's threads."""
        return getattr(self._mine, "kind", None) is not None

    def submit(self, kind: str, fn: Callable[..., Any], *args: Any,
               on_drop: Optional[Callable[[], Any]] = None) -> bool:
        """Queue ``fn(*args)``; False (and nothing queued) when the pool is full or closed.

        ``on_drop`` answers the work instead if it is still queued when :meth:`drop_queued` runs.
        """
        with self._cond:
            if self._closed or sum(self._counts.values()) >= self.capacity:
                return False
            self._counts[kind] += 1
        try:
            future = self._executor.submit(self._run, kind, fn, *args)
        except RuntimeError:  # shut down between the check and the submit
            self._release(kind)
            return False
        if on_drop is not None:
            with self._cond:
                self._drops[future] = on_drop
        future.add_done_callback(lambda f, k=kind: self._done(f, k))  # type: ignore[misc]
        return True

    def _run(self, kind: str, fn: Callable[..., None], *args: Any) -> None:
        self._mine.kind = kind
        with self._cond:
            self._running += 1
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - a task must never kill a pool thread silently
            log.exception("unhandled error in a listener task")
        finally:
            self._mine.kind = None
            with self._cond:
                self._running -= 1

    def _done(self, future: "Future[None]", kind: str) -> None:
        with self._cond:
            self._drops.pop(future, None)
        self._release(kind)

    def _release(self, kind: str) -> None:
        with self._cond:
            self._counts[kind] -= 1
            self._cond.notify_all()

    def drop_queued(self) -> List[Callable[[], None]]:
        """Cancel the work not yet started; the ``on_drop`` callbacks of what was cancelled, to call."""
        with self._cond:
            queued = list(self._drops.items())
        return [on_drop for future, on_drop in queued if future.cancel()]

    def wait_idle(self, deadline: DeadlineLike, kinds: Iterable[str] = KINDS) -> bool:
        """Wait until no work of ``kinds`` is in flight (the calling task itself excluded)."""
        until = Deadline.coerce(deadline)
        kinds = tuple(kinds)
        own = getattr(self._mine, "kind", None)
        with self._cond:
            while True:
                busy = sum(self._counts[k] for k in kinds) - (1 if own in kinds else 0)
                if busy <= 0:
                    return True
                if until.expired:
                    return False
                self._cond.wait(until.remaining())

    def close(self, deadline: DeadlineLike) -> bool:
        """Take no more work, let queued and running work finish until ``deadline``.

        True when every thread has finished. Work still queued at the deadline is
        dropped (call :meth:`drop_queued` first to answer it); a handler still
        running is left to finish on its own.
        """
        with self._cond:
            self._closed = True
        idle = self.wait_idle(deadline)
        if idle and not self.in_worker():
            self._executor.shutdown(wait=True)
            return True
        self._executor.shutdown(wait=False, cancel_futures=True)
        return False
