"""Admission: every decision to refuse work with 503, in one place.

Work is refused when the listener is closing, when the handler pool and its
backlog are full (``max_workers`` + ``max_pending``), and, for WebSocket
accepts that wait for ``accept_connection()``, when the accept queue is full.
A refusal that needs a handshake of its own (rejecting a WebSocket, fetching
an address-only request just to answer it) runs on a small overflow pool so
the control channel's reader never waits on it. At close, the work still
queued is answered 503 too, so every request gets exactly one response.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable, List, Optional, Protocol

from .._deadline import Deadline
from .dialing import ACCEPT_DIALS, DialQueue
from .pool import WorkPool
from .stats import Counters

__all__ = ["Admission", "Refusal", "BUSY", "CLOSING", "TOO_MANY_UNACCEPTED", "AcceptPlaces"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refusal:
    """A status and its description, for an HTTP answer or a WebSocket reject."""

    status: int
    text: str


BUSY = Refusal(503, "Service Unavailable: the listener is busy")
CLOSING = Refusal(503, "Service Unavailable: the listener is closing")
TOO_MANY_UNACCEPTED = Refusal(503, "Service Unavailable: the listener is holding too many unaccepted connections")

Refuse = Callable[[Refusal], object]  # what it returns is ignored


class AcceptPlaces(Protocol):
    """The pull queue's places, promised to accepts before their handshake starts."""

    def reserve(self) -> bool:
        """Promise a place; False when none is left."""

    def release(self) -> None:
        """Give back a promised place that will not be used."""


class Admission:
    """Decides, for each piece of work, whether it runs or is refused (and how it is refused).

    :param pool: the handler pool work runs in.
    :param counters: ``busy`` counts every refusal.
    """

    def __init__(self, name: str, pool: WorkPool, counters: Counters) -> None:
        self.name = name
        self._pool = pool
        self._overflow = WorkPool(name, 2, 32, role="overflow")
        self._dials = DialQueue(pool, runners=min(ACCEPT_DIALS, pool.max_workers))
        self._counters = counters
        #: Set once the listener has begun closing.
        self.closing_event = threading.Event()

    @property
    def closing(self) -> bool:
        """True once the listener has begun closing: every new piece of work is refused."""
        return self.closing_event.is_set()

    def start_closing(self) -> None:
        self.closing_event.set()

    # ------------------------------------------------------------------ decisions

    def request(self, serve: Callable[[], None], refuse: Refuse, what: str = "a request") -> None:
        """Run ``serve`` in the pool, or answer now with ``refuse(refusal)`` (a cheap control-channel answer)."""
        refusal = CLOSING if self.closing else None
        if refusal is None and not self._pool.submit("http", serve, on_drop=lambda: refuse(CLOSING)):
            refusal = BUSY
        if refusal is not None:
            self._count(refusal, what)
            refuse(refusal)

    def fetch(self, start: Callable[[], bool], refuse: Refuse) -> None:
        """Start fetching an address-only request (``start()`` False: no room), or refuse it later."""
        if self.closing:
            self.refuse_later(CLOSING, refuse, "an address-only request")
        elif not start():
            self.refuse_later(BUSY, refuse, "an address-only request")

    def accept(self, serve: Callable[[bool], None], reject: Refuse, places: Optional[AcceptPlaces],
               multiplexed: bool = False) -> None:
        """Run ``serve(reserved)`` for a WebSocket accept, or reject it later.

        ``places``: the pull queue when accepted sockets wait for ``accept_connection()``;
        a place is promised before the handshake, so the queue's bound stays exact.
        ``multiplexed``: the accept only dials (the socket goes to the multiplexer), so it waits in
        the :class:`~.dialing.DialQueue` instead of the handler pool's backlog.
        """
        refusal, reserved = None, False
        if self.closing:
            refusal = CLOSING
        elif multiplexed:
            if not self._dials.push(lambda: serve(False), lambda: reject(CLOSING)):
                self.refuse_later(BUSY, reject, "a WebSocket")
            return
        elif places is not None:
            reserved = places.reserve()
            refusal = None if reserved else TOO_MANY_UNACCEPTED

        def dropped() -> None:
            if reserved and places is not None:
                places.release()
            reject(CLOSING)

        if refusal is None and not self._pool.submit("ws", serve, reserved, on_drop=dropped):
            refusal = BUSY
            if reserved and places is not None:
                places.release()
        if refusal is not None:
            self.refuse_later(refusal, reject, "a WebSocket")

    def refuse_later(self, refusal: Refusal, refuse: Refuse, what: str) -> None:
        """Refuse on the overflow pool (the refusal needs a handshake of its own)."""
        self._count(refusal, what)
        if not self._overflow.submit("http", refuse, refusal):
            log.warning("listener %s is overloaded; dropped %s without answering", self.name, what)

    def _count(self, refusal: Refusal, what: str) -> None:
        self._counters.bump("busy")
        log.warning("listener %s: %s for %s", self.name, refusal.text.lower(), what)

    # ------------------------------------------------------------------ closing

    def refuse_queued(self, until: Deadline, wait: bool = True) -> Optional[threading.Thread]:
        """Answer 503 to the work still queued, in a thread of its own that gives up at ``until``.

        ``wait``: join it until ``until``; else the caller joins the thread returned (None: nothing
        was queued). A hung network must not hold close(); closing the channel afterwards ends a
        send stuck in it.
        """
        refusals: List[Callable[[], object]] = [*self._pool.drop_queued(), *self._dials.drop()]
        if not refusals:
            return None
        log.warning("listener %s closing: answering 503 to %d queued requests or connections", self.name,
                    len(refusals))

        def refuse_all() -> None:
            for done, refuse in enumerate(refusals):
                if until.expired:
                    log.warning("listener %s: close deadline passed; %d queued items left unanswered",
                                self.name, len(refusals) - done)
                    return
                try:
                    refuse()
                except Exception:  # noqa: BLE001 - one failed refusal must not stop the others
                    log.exception("listener %s could not refuse queued work", self.name)

        thread = threading.Thread(target=refuse_all, name=f"hybridconn-refuse-{self.name}", daemon=True)
        thread.start()
        if wait:
            until.join(thread)
        return thread

    def close(self, until: Deadline) -> bool:
        """Stop the overflow pool; True when its threads ended in time."""
        return self._overflow.close(until)
