"""One relayed HTTP request in flight, and the rendezvous socket it may travel on.

The sender's connection thread waits on a :class:`PendingRequest`; the
threads reading the listener's control channel or rendezvous socket put its
outcome there as small frozen events:

* :class:`Linked` - the listener opened the request's rendezvous socket;
* :class:`ResponseReady` - a complete response (head and whole body);
* :class:`ResponseStarted`, then :class:`ResponseData` pieces and :data:`RESPONSE_END` -
  a response whose body streams;
* a :class:`~.status.Refusal` - answer the sender with this instead;
* :class:`Aborted` - drop the sender's connection (a body broke off, the emulator stops);
* :class:`ListenerLeft` - the listener closed its control channel cleanly; it has a grace
  period to answer over the rendezvous address.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from typing import Optional, Protocol, Union

from ..protocol import Request, Response, serialize_message
from .entities import Entity, ListenerChannel
from .status import Refusal, close_reason
from .ws import WsChannel

__all__ = [
    "SenderConnection",
    "RendezvousLink",
    "Linked",
    "ResponseReady",
    "ResponseStarted",
    "ResponseData",
    "ResponseEnd",
    "RESPONSE_END",
    "Aborted",
    "ListenerLeft",
    "RequestEvent",
    "PendingRequest",
]


class SenderConnection(Protocol):
    """What a rendezvous socket needs of the sender's HTTP connection it serves."""

    @property
    def link(self) -> Optional["RendezvousLink"]:
        """The rendezvous socket serving this connection, if any."""

    def attach_link(self, link: "RendezvousLink") -> bool:
        """Serve this connection over ``link`` from now on; False if the connection has ended."""

    def drop_after_response(self) -> None:
        """Stop taking requests; the response being written still completes."""


class RendezvousLink:
    """The rendezvous socket a listener opened for one sender connection.

    From its first request on, it carries every request of that connection
    (written by the sender's thread) and their responses (read by the thread
    that accepted the socket).
    """

    def __init__(self, ws: WsChannel, sender: SenderConnection, address: str) -> None:
        self.ws = ws
        self.sender = sender
        self.address = address
        self.current: Optional[PendingRequest] = None  # the request being answered on it
        self.alive: bool = True

    def send_request(self, pending: "PendingRequest", request: Request, body: Optional[bytes]) -> bool:
        """A request with its whole body (or none)."""
        self.current = pending
        return self.ws.send_unit(serialize_message(request), body if request.has_body else None)

    def start_streamed_request(self, pending: "PendingRequest", request: Request) -> bool:
        """The request JSON; body fragments follow with :meth:`send_body`."""
        self.current = pending
        return self.ws.send_message(serialize_message(request))

    def send_body(self, chunk: bytes, fin: bool) -> bool:
        return self.ws.send_message(chunk, fin)

    def sender_gone(self) -> None:
        """The sender's HTTP connection ended: close the rendezvous socket."""
        self.alive = False
        if self.ws.can_send:
            self.ws.send_close(1001, close_reason("The sender client shut down the connection"))


# ------------------------------------------------------------------ events
# Slotted, frozen: one or more is made per relayed request.


@dataclass(frozen=True)
class Linked:
    __slots__ = ("link",)
    link: RendezvousLink


@dataclass(frozen=True)
class ResponseReady:
    __slots__ = ("response", "body")
    response: Response
    body: bytes


@dataclass(frozen=True)
class ResponseStarted:
    __slots__ = ("response",)
    response: Response


@dataclass(frozen=True)
class ResponseData:
    __slots__ = ("data",)
    data: bytes


@dataclass(frozen=True)
class ResponseEnd:
    __slots__ = ()


#: The one :class:`ResponseEnd` (it carries nothing).
RESPONSE_END = ResponseEnd()


@dataclass(frozen=True)
class Aborted:
    __slots__ = ("why",)
    why: str


@dataclass(frozen=True)
class ListenerLeft:
    """The listener closed its control channel cleanly before answering: it may still answer over the
    request's rendezvous address within ``grace`` seconds, else the sender gets ``refusal``."""

    __slots__ = ("grace", "refusal")
    grace: float
    refusal: Refusal


RequestEvent = Union[Linked, ResponseReady, ResponseStarted, ResponseData, ResponseEnd, Aborted, Refusal, ListenerLeft]


class _DoneFlag:
    """Set once the sender stops taking events; wakes a producer blocked on a full queue."""

    __slots__ = ("_pending", "_set")

    def __init__(self, pending: "PendingRequest") -> None:
        self._pending = pending
        self._set = False

    def set(self) -> None:
        pending = self._pending
        with pending._lock:
            self._set = True
            if pending._room is not None:
                pending._room.notify_all()

    def is_set(self) -> bool:
        return self._set


class PendingRequest:
    """A relayed HTTP request; its outcome arrives as events taken with :meth:`get`.

    One sender thread takes the events, so each is handed over directly: a deque under one lock,
    and a second lock, held while nobody waits, that a producer releases to wake the waiting
    sender (one wake-up per event, nothing allocated per wait). A ``threading.Condition`` cost a
    new lock and its Python bookkeeping on every wait and notify, about 13 % of the emulator's
    CPU per relayed request (py-spy). A condition over the same lock (``_room``) is made only when
    a producer must wait for room in a full queue, which only a streamed body does.

    :ivar channel: the control channel the request was sent on (None when it went
        over the sender connection's rendezvous socket).
    :ivar linked: a rendezvous socket carries the request.
    :ivar answered: a response (or a failure) was taken for it; later ones are ignored.
    """

    #: Events queued before a producer (a rendezvous body reader) waits for the sender.
    MAX_QUEUED = 64

    def __init__(
        self,
        entity: Entity,
        request_id: str,
        address: str,
        sender: SenderConnection,
        channel: Optional[ListenerChannel] = None,
        secret: str = "",
    ) -> None:
        self.entity = entity
        self.id = request_id
        self.address = address
        self.secret = secret  # the rendezvous address's key (see .keys); empty: no address to open
        self.sender = sender
        self.channel = channel
        self.linked = False
        self.answered: bool = False
        self._lock = threading.Lock()
        self._wake = threading.Lock()  # released (under _lock) to wake the sender waiting in get()
        self._wake.acquire()
        self._waiting = False  # the sender waits on _wake; guarded by _lock
        self._room: Optional[threading.Condition] = None  # producers waiting for room (made on first need)
        self._events: "collections.deque[RequestEvent]" = collections.deque()
        self.done: _DoneFlag = _DoneFlag(self)

    def _queued(self, event: RequestEvent) -> None:
        """Append ``event`` and wake the sender if it waits; ``_lock`` held."""
        self._events.append(event)
        if self._waiting:
            self._waiting = False
            self._wake.release()

    def put(self, event: RequestEvent, stop: Optional[threading.Event] = None) -> bool:
        """Queue an event; blocks while the sender is slow (back-pressure), gives up when done."""
        with self._lock:
            while True:
                if self.done.is_set() or (stop is not None and stop.is_set()):
                    return False
                if len(self._events) < self.MAX_QUEUED:
                    break
                if self._room is None:
                    self._room = threading.Condition(self._lock)
                self._room.wait(1.0)  # ``stop`` is not our condition's: look at it every second
            self._queued(event)
            return True

    def put_now(self, event: RequestEvent) -> None:
        """Queue a terminal event without blocking (drops the oldest data if full)."""
        with self._lock:
            if len(self._events) >= self.MAX_QUEUED:
                self._events.popleft()
            self._queued(event)

    def get(self, timeout: float) -> Optional[RequestEvent]:
        """The next event, or None when none arrives within ``timeout`` seconds (one thread takes them)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if self._events:
                    event = self._events.popleft()
                    if self._room is not None and len(self._events) == self.MAX_QUEUED - 1:
                        self._room.notify_all()  # a producer may be waiting for room
                    return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._waiting = True
            if not self._wake.acquire(timeout=remaining):
                with self._lock:
                    if self._waiting:  # nobody woke us: a true timeout
                        self._waiting = False
                        return None
                # a producer released _wake just as the wait ran out: take that release back
                self._wake.acquire()

    def fail(self, refusal: Refusal) -> None:
        """Answer the sender with ``refusal``: marks the request answered."""
        self.answered = True
        self.put_now(refusal)

    def abort(self, why: str) -> None:
        """Drop the sender's connection: marks the request answered."""
        self.answered = True
        self.put_now(Aborted(why))
