"""The HTTP requests the listener has read but not yet answered, and what leaving does with them.

Every :class:`~.responder.Reply` is made here and stays registered until its
response went out. That gives a draining listener what it needs:

- :meth:`InFlight.leave_control_channel` moves every reply that would answer on
  the control channel to its request's rendezvous address (the protocol's
  other way back), so the channel can be closed without losing an answer; a
  request that arrives while draining is moved as soon as it is read;
- :meth:`InFlight.answer_unfinished` answers 503 for the handlers still running
  when the drain's time is up, so every request gets exactly one response;
- each finished reply's :class:`~hybridconn.relayed.ResponseRecord` goes to the
  ``on_response`` hook (access logs, metrics).

Upgrades and cut-short answers each open or write a socket, so they run on a
small pool of their own (``hybridconn-upgrade-<name>``), never on the reader.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, List, Set

from .._deadline import Deadline
from ..relayed import RelayedResponse
from .hooks import Hooks
from .pool import WorkPool
from .responder import Reply

__all__ = ["InFlight", "UPGRADE_THREADS"]

log = logging.getLogger(__name__)

#: Rendezvous handshakes run at once while leaving the control channel.
UPGRADE_THREADS = 8


class InFlight:
    """The unanswered replies of one listener (the :class:`~.responder.ReplyObserver` of each)."""

    def __init__(self, name: str, hooks: Hooks) -> None:
        self.name = name
        self._hooks = hooks
        self._cond = threading.Condition()
        self._replies: Set[Reply] = set()
        self._leaving = False
        self._upgrades = WorkPool(name, UPGRADE_THREADS, 100_000, role="upgrade")

    def reply(self, request_id: str, **options: Any) -> Reply:
        """A registered :class:`~.responder.Reply` (its options as the class takes them)."""
        reply = Reply(request_id, observer=self, **options)
        with self._cond:
            self._replies.add(reply)
            leaving = self._leaving
        if leaving and reply.needs_control_channel:
            self._schedule_upgrade(reply)
        return reply

    @property
    def count(self) -> int:
        with self._cond:
            return len(self._replies)

    # ------------------------------------------------------------------ ReplyObserver

    # Only leave_control_channel waits on _cond, and only once _leaving is set (under the lock):
    # before that, a reply's change wakes nobody, so it does not pay for a notify.

    def reply_changed(self, reply: Reply) -> None:
        with self._cond:
            if self._leaving:
                self._cond.notify_all()

    def reply_done(self, reply: Reply, delivered: bool) -> None:
        with self._cond:
            self._replies.discard(reply)
            if self._leaving:
                self._cond.notify_all()
        if self._hooks.on_response is not None:
            self._hooks.notify("on_response", reply.record(delivered))

    # ------------------------------------------------------------------ leaving

    def leave_control_channel(self, until: Deadline) -> bool:
        """Move every reply off the control channel; True when none needs it any more (by ``until``).

        From now on, replies made for requests read off the control channel are moved too.
        """
        with self._cond:
            self._leaving = True
            bound = [reply for reply in self._replies if reply.needs_control_channel]
        if bound:
            log.info("listener %s: moving %d requests in flight to their rendezvous addresses", self.name, len(bound))
        for reply in bound:
            self._schedule_upgrade(reply)
        with self._cond:
            while True:
                waiting = [reply for reply in self._replies if reply.needs_control_channel]
                # A reply whose upgrade failed, or that is being written on the channel, still needs it.
                if not waiting:
                    return True
                if until.expired:
                    log.warning("listener %s: %d requests still need the control channel at its close",
                                self.name, len(waiting))
                    return False
                self._cond.wait(until.left(cap=0.5))

    def _schedule_upgrade(self, reply: Reply) -> None:
        if not self._upgrades.submit("http", reply.upgrade):
            log.warning("listener %s: could not schedule the upgrade of request %s", self.name, reply.request_id)

    def answer_unfinished(self, response: RelayedResponse, until: Deadline) -> int:
        """Answer ``response`` (a 503) to every reply not yet being written; how many were answered."""
        with self._cond:
            pending: List[Reply] = [reply for reply in self._replies if not reply.claimed]
        if not pending:
            return 0
        log.warning("listener %s: answering %d unfinished requests %d at the drain deadline", self.name,
                    len(pending), response.status)
        for reply in pending:
            self._upgrades.submit("http", lambda r=reply: r.send(_copy(response), cut_short=True))
        self._upgrades.wait_idle(until)
        return len(pending)

    def close(self, until: Deadline) -> bool:
        """Stop the upgrade pool; True when its threads ended in time."""
        return self._upgrades.close(until)


def _copy(response: RelayedResponse) -> RelayedResponse:
    """A fresh response per request (a response object may be consumed by sending it)."""
    return RelayedResponse(status=response.status, headers=dict(response.headers or {}), body=bytes(response.body),  # type: ignore[arg-type]
                           reason=response.reason)
