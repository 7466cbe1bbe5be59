"""What the emulator knows: hybrid connections, their listeners, and work in flight.

All shared state lives here behind one lock (a Condition, so tests can wait
for listeners). Threads hand work to each other through the objects below:
a :class:`PendingAccept` pairs a waiting sender with the listener that
connects to its rendezvous address; a :class:`PendingRequest` carries a
relayed HTTP request's outcome back to the sender's connection thread.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ..protocol import MAX_LISTENERS
from .status import Refusal, describe
from .ws import WsChannel

__all__ = ["Entity", "ListenerChannel", "PendingAccept", "PendingRequest", "Registry"]

log = logging.getLogger(__name__)


@dataclass
class Entity:
    """One hybrid connection."""

    name: str
    requires_client_authorization: bool = True
    listeners: Dict[str, "ListenerChannel"] = field(default_factory=dict)
    refuse_until: float = 0.0
    refuse_status: int = 503


class ListenerChannel:
    """A registered control channel."""

    def __init__(self, entity: Entity, listener_id: str, ws: WsChannel, base_url: str, expires_at: float) -> None:
        self.entity = entity
        self.listener_id = listener_id
        self.ws = ws
        self.base_url = base_url  # scheme://host[:port] as the listener reached us; rendezvous addresses use it
        self.expires_at = expires_at
        self.stalled = threading.Event()
        self.released = threading.Event()  # set when the channel must stop (drop fault, stop())
        self.online_since = time.monotonic()

    def send(self, text: str, body: Optional[bytes] = None) -> bool:
        """Send a control message (and its body). A stalled channel swallows it silently."""
        if self.stalled.is_set():
            log.debug("listener %s is stalled; dropping a control message", self.listener_id)
            return True
        return self.ws.send_unit(text, body)


class PendingAccept:
    """A sender waiting for a listener to accept or reject it."""

    WAITING, CLAIMED, ACCEPTED, REJECTED, FAILED = "waiting", "claimed", "accepted", "rejected", "failed"

    def __init__(self, entity: Entity, accept_id: str, deadline: float) -> None:
        self.entity = entity
        self.id = accept_id
        self.deadline = deadline
        self.state = self.WAITING
        self.listener_ws: Optional[WsChannel] = None
        self.subprotocol: Optional[str] = None
        self.reject_status = 0
        self.reject_description = ""
        self.failure = ""
        self.sender_ws: Optional[WsChannel] = None
        self.sender_ready = threading.Event()
        self._cond = threading.Condition()

    def claim(self) -> bool:
        """The listener came to the address: single use, within the window."""
        with self._cond:
            if self.state != self.WAITING or time.monotonic() > self.deadline:
                return False
            self.state = self.CLAIMED
            return True

    def _settle(self, state: str, **values: Any) -> None:
        with self._cond:
            self.state = state
            for name, value in values.items():
                setattr(self, name, value)
            self._cond.notify_all()

    def accepted(self, listener_ws: WsChannel, subprotocol: Optional[str]) -> None:
        self._settle(self.ACCEPTED, listener_ws=listener_ws, subprotocol=subprotocol)

    def rejected(self, status: int, description: str) -> None:
        self._settle(self.REJECTED, reject_status=status, reject_description=description)

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


class _DoneFlag:
    """Set once the sender stops taking outcomes; wakes a producer blocked on a full queue."""

    __slots__ = ("_cond", "_set")

    def __init__(self, cond: threading.Condition) -> None:
        self._cond = cond
        self._set = False

    def set(self) -> None:
        with self._cond:
            self._set = True
            self._cond.notify_all()

    def is_set(self) -> bool:
        return self._set


class PendingRequest:
    """A relayed HTTP request; its outcome arrives as items taken with :meth:`get`.

    Items: ``("link", RendezvousLink)``, ``("head", Response)`` (a streamed body follows as
    ``("data", bytes)`` items), ``("head", Response, body)`` (complete), ``("data", bytes)``,
    ``("end",)``, ``("fail", status, description)``, ``("abort", why)``.

    One lock and a deque rather than a ``queue.Queue`` and an ``Event``: one of these is made
    per relayed request, and those cost three conditions and a second lock each.
    """

    #: Items queued before a producer (a rendezvous body reader) waits for the sender.
    MAX_QUEUED = 64

    def __init__(self, entity: Entity, request_id: str, address: str, sender: Any) -> None:
        self.entity = entity
        self.id = request_id
        self.address = address
        self.sender = sender  # the sender's HTTP connection (http_conn.HttpConnection)
        self.channel: Optional[ListenerChannel] = None  # control channel it was sent on
        self._cond = threading.Condition(threading.Lock())
        self._items: "collections.deque[Tuple[Any, ...]]" = collections.deque()
        self.linked = False
        self.answered = False
        self.done = _DoneFlag(self._cond)

    def put(self, item: Tuple[Any, ...], stop: Optional[threading.Event] = None) -> bool:
        """Queue an item; blocks while the sender is slow (back-pressure), gives up when done."""
        with self._cond:
            while True:
                if self.done.is_set() or (stop is not None and stop.is_set()):
                    return False
                if len(self._items) < self.MAX_QUEUED:
                    break
                self._cond.wait(1.0)  # ``stop`` is not our condition's: look at it every second
            self._items.append(item)
            self._cond.notify_all()
            return True

    def put_now(self, item: Tuple[Any, ...]) -> None:
        """Queue a terminal item without blocking (drops the oldest data if full)."""
        with self._cond:
            if len(self._items) >= self.MAX_QUEUED:
                self._items.popleft()
            self._items.append(item)
            self._cond.notify_all()

    def get(self, timeout: float) -> Optional[Tuple[Any, ...]]:
        """The next item, or None when none arrives within ``timeout`` seconds."""
        with self._cond:
            if not self._items:
                if timeout <= 0:
                    return None
                deadline = time.monotonic() + timeout
                while not self._items:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    self._cond.wait(remaining)
            item = self._items.popleft()
            if len(self._items) == self.MAX_QUEUED - 1:
                self._cond.notify_all()  # a producer may be waiting for room
            return item


class Registry:
    """Hybrid connections, listeners and pending work, under one lock."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.entities: Dict[str, Entity] = {}
        self.accepts: Dict[str, PendingAccept] = {}
        self.requests: Dict[str, PendingRequest] = {}

    # ------------------------------------------------------------------ entities

    def add_entity(self, name: str, requires_client_authorization: bool = True) -> Entity:
        name = name.strip("/")
        if not name:
            raise ValueError("a hybrid connection needs a name")
        with self.cond:
            entity = self.entities.get(name)
            if entity is None:
                entity = self.entities[name] = Entity(name, requires_client_authorization)
            else:
                entity.requires_client_authorization = requires_client_authorization
            return entity

    def get_entity(self, name: str) -> Entity:
        with self.cond:
            try:
                return self.entities[name.strip("/")]
            except KeyError:
                raise KeyError(f"no hybrid connection named {name!r}") from None

    def resolve(self, path: str) -> Optional[Tuple[Entity, str]]:
        """(entity, suffix) for a decoded path such as ``hc1/a/b``: the longest registered name wins."""
        path = path.lstrip("/")
        with self.cond:
            best: Optional[Entity] = None
            for name, entity in self.entities.items():
                if path == name or path.startswith(name + "/"):
                    if best is None or len(name) > len(best.name):
                        best = entity
        if best is None:
            return None
        return best, path[len(best.name) :]

    # ------------------------------------------------------------------ listeners

    def check_capacity(self, entity: Entity) -> None:
        with self.cond:
            if len(entity.listeners) >= MAX_LISTENERS:
                raise Refusal(
                    403, describe(f"The hybrid connection already has the maximum of {MAX_LISTENERS} listeners", entity.name)
                )

    def add_listener(self, channel: ListenerChannel) -> None:
        entity = channel.entity
        with self.cond:
            self.check_capacity(entity)
            listener_id = channel.listener_id
            while listener_id in entity.listeners:
                listener_id = f"{channel.listener_id}_{uuid.uuid4().hex[:6]}"
            channel.listener_id = listener_id
            entity.listeners[listener_id] = channel
            self.cond.notify_all()

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

    def active_count(self, entity: Entity) -> int:
        with self.cond:
            return sum(1 for c in entity.listeners.values() if not c.stalled.is_set())

    def pick_listener(self, entity: Entity) -> Optional[ListenerChannel]:
        """A random listener; a stalled (half-open) one only when no other is left."""
        with self.cond:
            channels = list(entity.listeners.values())
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

    def fail_everything(self, why: str) -> None:
        """Stop: wake every waiting sender."""
        with self.cond:
            accepts = list(self.accepts.values())
            requests = list(self.requests.values())
        for pending in accepts:
            pending.fail(why)
        for request in requests:
            request.put_now(("abort", why))
