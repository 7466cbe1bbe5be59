"""What the emulator knows: hybrid connections, their listeners, and work in flight.

All shared state lives here behind one lock (a Condition, so tests can wait
for listeners). Threads hand work to each other through pending objects:
a :class:`PendingAccept` pairs a waiting sender with the listener that
connects to its rendezvous address; a :class:`~.exchange.PendingRequest`
carries a relayed HTTP request's outcome back to the sender's connection thread.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from typing import Callable, Collection, Dict, List, Optional, Tuple

from ..addresses import check_entity_path
from ..protocol import MAX_LISTENERS
from .entities import Entity, ListenerChannel
from .exchange import Aborted, PendingRequest
from .status import Refusal, describe
from .ws import WsChannel

__all__ = ["PendingAccept", "Registry"]

log: logging.Logger = logging.getLogger(__name__)


class PendingAccept:
    """A sender waiting for a listener to accept or reject it."""

    WAITING, CLAIMED, ACCEPTED, REJECTED, FAILED = "waiting", "claimed", "accepted", "rejected", "failed"

    def __init__(self, entity: Entity, accept_id: str, deadline: float, secret: str) -> None:
        self.entity = entity
        self.id = accept_id
        self.secret = secret  # the accept address's key (see .keys); never logged
        self.deadline = deadline
        self.state: str = self.WAITING
        self.listener_ws: Optional[WsChannel] = None
        self.subprotocol: Optional[str] = None
        self.reject_status: int = 0
        self.reject_description: str = ""
        self.failure: str = ""
        self.sender_ws: Optional[WsChannel] = None
        self.sender_ready: threading.Event = threading.Event()
        self._cond = threading.Condition()

    def claim(self) -> bool:
        """The listener came to the address: single use, within the window."""
        with self._cond:
            if self.state != self.WAITING or time.monotonic() > self.deadline:
                return False
            self.state = self.CLAIMED
            return True

    def accepted(self, listener_ws: WsChannel, subprotocol: Optional[str]) -> None:
        with self._cond:
            self.state, self.listener_ws, self.subprotocol = self.ACCEPTED, listener_ws, subprotocol
            self._cond.notify_all()

    def rejected(self, status: int, description: str) -> None:
        with self._cond:
            self.state, self.reject_status, self.reject_description = self.REJECTED, status, description
            self._cond.notify_all()

    def fail(self, why: str) -> None:
        with self._cond:
            if self.state in (self.WAITING, self.CLAIMED):
                self.state, self.failure = self.FAILED, why
                self._cond.notify_all()
        self.sender_ready.set()

    def wait(self) -> str:
        """Block until settled or the window closes (then the address stops working)."""
        with self._cond:
            while self.state in (self.WAITING, self.CLAIMED):
                remaining = self.deadline - time.monotonic()
                if self.state == self.WAITING and remaining <= 0:
                    self.state, self.failure = self.FAILED, "timeout"
                    break
                # a claimed accept is finishing its handshake: give it a short grace
                self._cond.wait(max(remaining, 0.05) if self.state == self.WAITING else 1.0)
            return self.state


class Registry:
    """Hybrid connections, listeners and pending work, under one lock."""

    def __init__(self) -> None:
        self.cond: threading.Condition = threading.Condition()
        self.entities: Dict[str, Entity] = {}
        self.accepts: Dict[str, PendingAccept] = {}
        self.requests: Dict[str, PendingRequest] = {}

    # ------------------------------------------------------------------ entities

    def add_entity(self, name: str, requires_client_authorization: bool = True) -> Entity:
        """Create (or reconfigure) a hybrid connection. :raises ConfigurationError: no name."""
        name = check_entity_path(name)
        with self.cond:
            entity = self.entities.get(name)
            if entity is None:
                entity = self.entities[name] = Entity(name, requires_client_authorization)
            else:
                entity.requires_client_authorization = requires_client_authorization
            return entity

    def entity_names(self) -> List[str]:
        with self.cond:
            return list(self.entities)

    def get_entity(self, name: str) -> Entity:
        with self.cond:
            try:
                return self.entities[name.strip("/")]
            except KeyError:
                raise KeyError(f"no hybrid connection named {name!r}") from None

    def resolve(self, path: str, case_sensitive: bool = True) -> Optional[Tuple[Entity, str]]:
        """(entity, suffix) for a decoded path such as ``hc1/a/b``: the longest registered name wins
        (an exact-case match first; with ``case_sensitive=False`` names also match in any case)."""
        path = path.lstrip("/")
        found = self._resolve(path, lambda text: text)
        if found is None and not case_sensitive:
            found = self._resolve(path, str.casefold)
        return found

    def _resolve(self, path: str, fold: Callable[[str], str]) -> Optional[Tuple[Entity, str]]:
        folded = fold(path)
        with self.cond:
            best: Optional[Entity] = None
            for name, entity in self.entities.items():
                name = fold(name)
                if folded == name or folded.startswith(name + "/"):
                    if best is None or len(name) > len(best.name):
                        best = entity
        if best is None:
            return None
        return best, path[len(best.name) :]

    # ------------------------------------------------------------------ listeners

    def check_capacity(self, entity: Entity) -> Optional[Refusal]:
        """A 403 refusal when ``entity`` has its maximum of listeners, else None."""
        with self.cond:
            if len(entity.listeners) >= MAX_LISTENERS:
                return Refusal(
                    403,
                    describe(
                        f"The hybrid connection already has the maximum of {MAX_LISTENERS} listeners", entity.name
                    ),
                )
            return None

    def add_listener(self, channel: ListenerChannel) -> Optional[Refusal]:
        """Register ``channel`` (a unique id is made if its own is taken), or refuse it when full."""
        entity = channel.entity
        with self.cond:
            refusal = self.check_capacity(entity)
            if refusal is not None:
                return refusal
            listener_id = channel.listener_id
            while listener_id in entity.listeners:
                listener_id = f"{channel.listener_id}_{uuid.uuid4().hex[:6]}"
            channel.listener_id = listener_id
            entity.listeners[listener_id] = channel
            self.cond.notify_all()
            return None

    def remove_listener(self, channel: ListenerChannel) -> bool:
        with self.cond:
            entity = channel.entity
            if entity.listeners.get(channel.listener_id) is channel:
                del entity.listeners[channel.listener_id]
                self.cond.notify_all()
                return True
            return False

    def channels(self, entity: Entity, listener_id: Optional[str] = None) -> List[ListenerChannel]:
        with self.cond:
            found = list(entity.listeners.values())
        if listener_id is not None:
            found = [c for c in found if c.listener_id == listener_id]
        return found

    def notify_changed(self) -> None:
        """Wake threads waiting for listeners (a channel was stalled: it no longer counts)."""
        with self.cond:
            self.cond.notify_all()

    def active_count(self, entity: Entity) -> int:
        with self.cond:
            return sum(1 for c in entity.listeners.values() if not c.stalled.is_set())

    def pick_listener(
        self,
        entity: Entity,
        exclude: Collection[ListenerChannel] = (),
        only: Optional[Callable[[ListenerChannel], bool]] = None,
    ) -> Optional[ListenerChannel]:
        """A random listener (not one of ``exclude``, one ``only`` accepts); a stalled (half-open) one
        only when no other is left."""
        with self.cond:
            channels = [c for c in entity.listeners.values() if c not in exclude and (only is None or only(c))]
        if not channels:
            return None
        healthy = [c for c in channels if not c.stalled.is_set()]
        return random.choice(healthy or channels)

    def wait_for_listeners(self, entity: Entity, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.active_count(entity) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.cond.wait(remaining)
            return True

    # ------------------------------------------------------------------ pending work

    def add_accept(self, pending: PendingAccept) -> str:
        with self.cond:
            key = pending.id
            while key in self.accepts:
                key = f"{pending.id}_{uuid.uuid4().hex[:6]}"
            pending.id = key
            self.accepts[key] = pending
            return key

    def pop_accept(self, key: str) -> None:
        with self.cond:
            self.accepts.pop(key, None)

    def find_accept(self, key: str) -> Optional[PendingAccept]:
        with self.cond:
            return self.accepts.get(key)

    def add_request(self, pending: PendingRequest) -> None:
        with self.cond:
            self.requests[pending.id] = pending

    def pop_request(self, key: str) -> None:
        with self.cond:
            self.requests.pop(key, None)
            if not self.requests:
                self.cond.notify_all()  # wakes a draining stop()

    def wait_requests_done(self, timeout: float) -> bool:
        """Wait until no HTTP request is in flight; False when ``timeout`` passed first."""
        with self.cond:
            return self.cond.wait_for(lambda: not self.requests, timeout)

    def find_request(self, key: str) -> Optional[PendingRequest]:
        with self.cond:
            return self.requests.get(key)

    def requests_on(self, channel: ListenerChannel) -> List[PendingRequest]:
        with self.cond:
            return [p for p in self.requests.values() if p.channel is channel]

    def all_channels(self) -> List[ListenerChannel]:
        """Every registered control channel, of every hybrid connection."""
        with self.cond:
            return [c for e in self.entities.values() for c in e.listeners.values()]

    def fail_everything(self, why: str) -> None:
        """Stop: wake every waiting sender."""
        with self.cond:
            accepts = list(self.accepts.values())
            requests = list(self.requests.values())
        for pending in accepts:
            pending.fail(why)
        for request in requests:
            request.put_now(Aborted(why))

    def forget_everything(self) -> None:
        """After a stop: no listener, accept or request is left (the hybrid connections stay)."""
        with self.cond:
            for entity in self.entities.values():
                entity.listeners.clear()
            self.accepts.clear()
            self.requests.clear()
            self.cond.notify_all()
