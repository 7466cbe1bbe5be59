"""A graceful stop: leave the relay first, then let the work in flight finish.

The relay routes a hybrid connection's requests to the listeners whose control
channel is open, so a listener that is going away closes its channel first:
from that moment the relay sends new work to the other listeners. An answer
to a request that came over the control channel must go back on that channel
or over a rendezvous socket on the request's ``address`` (the protocol allows
both), so before the channel closes every such request still being worked on
is moved to its rendezvous address; one that the relay had already sent when
it read our close is moved as soon as it is read. The handlers then get the
rest of the time; whatever is still running at the end is answered 503, so
every request gets exactly one answer.

:class:`Drainer` runs those steps on the listener's parts; the listener's
``drain()`` then closes as ``close()`` does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .._deadline import Deadline
from .admission import CLOSING, Admission
from .channel import ControlChannel
from .handling import error_response
from .inflight import InFlight
from .pool import WorkPool
from .rendezvous import RendezvousPool

__all__ = ["Drainer", "DrainOutcome", "LEAVE_WITHIN", "CLOSE_RESERVE"]

log = logging.getLogger(__name__)

#: Longest time spent moving requests off the control channel before it is closed anyway.
LEAVE_WITHIN = 10.0
#: Part of the drain's timeout kept for closing sockets and threads afterwards (at most 3 s).
CLOSE_RESERVE = 0.2


@dataclass(frozen=True)
class DrainOutcome:
    """What a drain did: whether the handlers all finished, and how many requests it answered 503."""

    finished: bool
    cut_short: int


class Drainer:
    """The steps of a graceful stop, on the parts the listener built."""

    def __init__(self, name: str, control: ControlChannel, inflight: InFlight, pool: WorkPool,
                 admission: Admission, rendezvous: RendezvousPool) -> None:
        self.name = name
        self._control = control
        self._inflight = inflight
        self._pool = pool
        self._admission = admission
        self._rendezvous = rendezvous

    def run(self, until: Deadline) -> DrainOutcome:
        """Leave the relay, let HTTP handlers finish until shortly before ``until``, answer the rest 503."""
        left = until.left()
        handlers_until = until.sooner(max(0.0, left - min(3.0, CLOSE_RESERVE * left)))
        self._rendezvous.start_draining()
        moved = self._inflight.leave_control_channel(handlers_until.sooner(LEAVE_WITHIN))
        if not moved:
            log.warning("listener %s leaves the control channel with requests that could not be moved", self.name)
        self._control.leave(handlers_until.sooner(5.0))
        log.info("listener %s left the relay; waiting up to %.1f s for %d requests in flight", self.name,
                 handlers_until.left(), self._inflight.count)
        finished = self._pool.wait_idle(handlers_until, kinds=("http",))
        self._admission.start_closing()
        self._admission.refuse_queued(until.sooner(1.0))
        cut = self._inflight.answer_unfinished(error_response(CLOSING.status, CLOSING.text), until.sooner(2.0))
        return DrainOutcome(finished=finished and cut == 0, cut_short=cut)
