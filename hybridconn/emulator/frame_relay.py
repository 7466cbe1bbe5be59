"""Relayed WebSocket frames from one thread: ``RelayEmulator(ws_relay="poll")``.

By default each side of a relayed WebSocket has a pump thread of its own, blocked in ``poll``
on its socket (:func:`.relay.pump`). With thousands of relayed WebSockets echoing at once,
thousands of those threads become runnable together and fight for the GIL: at 5,000
connections the emulator spent 94-98 % of both cores in the kernel on futex traffic and an
echo round stalled (and at 64 connections each message already cost twice the CPU it costs at
one). Here one thread waits on every relayed socket with a selector and forwards what each one
delivers, so only one thread is ever runnable for the relay.

The connection threads stay: each one hands its socket's direction over (:meth:`FrameRelay.pump`)
and sleeps until it ends, then closes its socket as before, so nothing else changes hands. The
relay unregisters a socket before it wakes that thread, so a closed descriptor is never left in
the selector. Each event is handled as the threaded pump does (:class:`.relay.Direction`).

The trade-off, and why it is not the default: a write blocks the relay thread while its peer's
socket buffer is full, so a peer that stops reading stalls every relayed WebSocket, for at most
the write timeout (30 s), where with threads it stalls only its own. TLS sockets stay on threads
(their buffered bytes are invisible to a selector).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import selectors
import socket
import ssl
import threading
import time
from typing import Dict, List, Optional, Protocol, Tuple

from .ws import ChannelEvent, WsChannel

__all__ = ["FrameRelay", "WS_RELAYS"]

log: logging.Logger = logging.getLogger(__name__)

#: The ways a relayed WebSocket's frames can be pumped (``RelayEmulator(ws_relay=...)``).
WS_RELAYS = ("threads", "poll")


class _Handover:
    """One direction of a relayed WebSocket, owned by the relay thread until it ends."""

    __slots__ = ("direction", "fd", "done")

    def __init__(self, direction: "DirectionLike") -> None:
        self.direction = direction
        self.fd = direction.src.sock.fileno()
        self.done = threading.Event()


class DirectionLike(Protocol):
    """What the relay needs of a direction (:class:`.relay.Direction` is one)."""

    @property
    def src(self) -> WsChannel:
        """The channel read; what it delivers goes to :meth:`step`."""

    def step(self, events: List[ChannelEvent]) -> bool:
        """Handle what ``src`` delivered; False once this direction has ended."""


class FrameRelay:
    """One named thread (``hybridconn-emulator-frame-relay``) relaying every handed-over direction."""

    def __init__(self, name: str = "hybridconn-emulator-frame-relay") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._incoming: List[_Handover] = []
        self._selector: Optional[selectors.BaseSelector] = None
        self._wake_r: Optional[socket.socket] = None
        self._wake_w: Optional[socket.socket] = None
        self._thread: Optional[threading.Thread] = None
        self._closed = False

    @staticmethod
    def can_relay(channel: WsChannel) -> bool:
        """False for a socket a selector cannot follow (TLS): that direction keeps its thread."""
        return not isinstance(channel.sock, ssl.SSLSocket)

    def pump(self, direction: DirectionLike) -> bool:
        """Relay ``direction`` on the relay thread and return when it has ended (or the relay closed);
        False, at once, when the relay is closed (the emulator stops, or the relay failed): the
        caller then pumps on its own thread."""
        handover = _Handover(direction)
        with self._lock:
            if self._closed:
                return False
            if self._thread is None:
                self._start_locked()
            self._incoming.append(handover)
            wake = self._wake_w
        self._wake(wake)
        handover.done.wait()
        return True

    def close(self, timeout: float = 5.0) -> None:
        """End every direction still relayed and stop the thread (bounded by ``timeout``)."""
        with self._lock:
            self._closed = True
            thread, wake = self._thread, self._wake_w
        if thread is None:
            return
        self._wake(wake)
        if thread is not threading.current_thread():
            thread.join(timeout)

    # ------------------------------------------------------------------ the relay thread

    def _start_locked(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r.fileno(), selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    @staticmethod
    def _wake(wake: Optional[socket.socket]) -> None:
        try:
            if wake is not None:
                wake.send(b"\0")
        except OSError:  # a full wake-up buffer is already a wake-up; a closed one: the relay ended
            pass

    def _run(self) -> None:
        selector, wake_r = self._selector, self._wake_r
        assert selector is not None and wake_r is not None
        live: Dict[int, _Handover] = {}
        timers: List[Tuple[float, int, _Handover]] = []  # each direction's next timer (idle drop, close)
        order = itertools.count()
        try:
            while True:
                with self._lock:
                    arrived, self._incoming = self._incoming, []
                    closed = self._closed
                if closed:
                    for handover in arrived:
                        handover.done.set()
                    return
                for handover in arrived:
                    try:
                        selector.register(handover.fd, selectors.EVENT_READ, handover)
                    except (ValueError, KeyError, OSError):  # a socket dropped meanwhile: only it ends
                        handover.direction.src.abort()
                        handover.done.set()
                        continue
                    live[handover.fd] = handover
                    self._step(handover, live, selector)  # bytes that came with the handshake
                    if handover.fd in live:
                        heapq.heappush(timers, (self._due(handover), next(order), handover))
                timeout = max(0.0, timers[0][0] - time.monotonic()) if timers else None
                for key, _ in selector.select(timeout):
                    if key.data is None:
                        _drain(wake_r)
                    elif key.fd in live and live[key.fd] is key.data:
                        self._step(key.data, live, selector)
                now = time.monotonic()
                while timers and timers[0][0] <= now:
                    _, _, handover = heapq.heappop(timers)
                    if live.get(handover.fd) is not handover:
                        continue  # ended since
                    self._step(handover, live, selector)
                    if live.get(handover.fd) is handover:
                        heapq.heappush(timers, (self._due(handover), next(order), handover))
        except Exception:  # noqa: BLE001 - the relay must never leave connection threads waiting
            log.exception("the emulator's frame relay failed; dropping every relayed WebSocket")
            for handover in live.values():
                handover.direction.src.abort()
        finally:
            for handover in list(live.values()):
                _unregister(selector, handover.fd)
                handover.done.set()
            with self._lock:
                self._closed = True  # a pump() from now on returns at once
                leftover, self._incoming = self._incoming, []
                self._thread = None
            for handover in leftover:
                handover.done.set()
            _unregister(selector, wake_r.fileno())
            selector.close()
            wake_r.close()
            if self._wake_w is not None:
                self._wake_w.close()

    @staticmethod
    def _due(handover: _Handover) -> float:
        """When the direction's timers want it read even if nothing arrives (idle drop, close deadline)."""
        src = handover.direction.src
        due = time.monotonic() + src.timers_due_in()
        deadline = src.close_deadline
        return min(due, deadline) if deadline is not None else due

    @staticmethod
    def _step(handover: _Handover, live: Dict[int, _Handover], selector: selectors.BaseSelector) -> None:
        direction = handover.direction
        if direction.step(direction.src.read_events(0)):
            return
        # Ended: unregister before the connection thread wakes and closes the socket.
        del live[handover.fd]
        _unregister(selector, handover.fd)
        handover.done.set()


def _unregister(selector: selectors.BaseSelector, fd: int) -> None:
    try:
        selector.unregister(fd)
    except (KeyError, ValueError, OSError):
        pass


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(4096):
            pass
    except OSError:  # BlockingIOError: nothing left
        pass
