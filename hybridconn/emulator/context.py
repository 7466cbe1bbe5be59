"""Settings and shared state every connection thread of one emulator sees."""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Protocol, Set, Tuple
from urllib.parse import parse_qsl, unquote

from ..addresses import HC_PREFIX
from .access import KeyRing
from .close_watch import CloseWatch
from .frame_relay import FrameRelay
from .limits import ClientCounter, ClientLimits
from .fidelity import Fidelity
from .registry import Registry

__all__ = ["EmulatorContext", "ServedConnection", "Target", "parse_target", "headers_dict", "raw_headers"]


class ServedConnection(Protocol):
    """What the emulator needs of a connection it serves, to stop it."""

    thread: threading.Thread

    def abort(self) -> None:
        """Drop the connection now (from any thread)."""


@dataclass
class EmulatorContext:
    """What every connection thread of one running emulator shares."""

    registry: Registry
    keyring: KeyRing
    secure: bool
    authority: str  # host:port for SystemTracker and Via
    response_timeout: float
    accept_timeout: float
    close_grace: float = 5.0
    hostnames: Tuple[str, ...] = ()  # other names clients address this emulator by (token audiences)
    limits: ClientLimits = field(default_factory=ClientLimits)
    clients: ClientCounter = field(default_factory=lambda: ClientCounter(0))  # per-address connection counts
    uploads: ClientCounter = field(default_factory=lambda: ClientCounter(0))  # per-address streamed request bodies
    fidelity: Fidelity = field(default_factory=Fidelity)
    stop: threading.Event = field(default_factory=threading.Event)
    connections: Set[ServedConnection] = field(default_factory=set)
    close_watch: CloseWatch = field(default_factory=CloseWatch)  # unanswered closes (close_watch.py)
    frame_relay: Optional[FrameRelay] = None  # ws_relay="poll": one thread relays WebSocket frames
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def ws_scheme(self) -> str:
        return "wss" if self.secure else "ws"

    def tracker(self, path: str) -> str:
        """The ``SystemTracker`` of a description: ``host:port:path`` (or ``host:port``)."""
        return f"{self.authority}:{path}" if path else self.authority

    def track(self, conn: ServedConnection) -> None:
        with self.lock:
            self.connections.add(conn)

    def untrack(self, conn: ServedConnection) -> None:
        with self.lock:
            self.connections.discard(conn)

    def tracked(self) -> List[ServedConnection]:
        with self.lock:
            return list(self.connections)


@dataclass(frozen=True)
class Target:
    """A request target taken apart.

    :ivar hc: True for ``/$hc/...`` (WebSocket endpoints).
    :ivar path: the decoded path after ``/`` or ``/$hc/``.
    :ivar raw_path: the path as sent (still percent-encoded), without ``/$hc``.
    :ivar query: the raw query string.
    :ivar pairs: the decoded query parameters.
    """

    hc: bool
    path: str
    raw_path: str
    query: str
    pairs: Tuple[Tuple[str, str], ...]

    def param(self, *names: str) -> Optional[str]:
        wanted = {n.lower() for n in names}
        for key, value in self.pairs:
            if key.lower() in wanted:
                return value
        return None


@functools.lru_cache(maxsize=1024)  # a pure function of the target, asked once per request
def parse_target(target: str) -> Target:
    raw_path, _, query = target.partition("?")
    if raw_path.startswith("http://") or raw_path.startswith("https://"):  # absolute-form
        rest = raw_path.split("://", 1)[1]
        raw_path = "/" + rest.partition("/")[2]
    decoded = unquote(raw_path)
    segments = decoded.lstrip("/")
    hc = segments.lower() == HC_PREFIX or segments.lower().startswith(HC_PREFIX + "/")
    if hc:
        segments = segments[len(HC_PREFIX) + 1 :]
        raw = raw_path.lstrip("/")
        raw = raw.split("/", 1)[1] if "/" in raw else ""
        raw_path = "/" + raw
    pairs = tuple(parse_qsl(query, keep_blank_values=True))
    return Target(hc=hc, path=segments, raw_path=raw_path, query=query, pairs=pairs)


def headers_dict(items: List[Tuple[bytes, bytes]]) -> Dict[str, str]:
    """Lower-case name -> value (repeated headers joined with ', ')."""
    out: Dict[str, str] = {}
    for name, value in items:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        out[key] = f"{out[key]}, {text}" if key in out else text
    return out


def raw_headers(items: List[Tuple[bytes, bytes]]) -> Dict[str, str]:
    """Original-case name -> value, repeated headers joined (the first spelling wins)."""
    out: Dict[str, str] = {}
    spelled: Dict[str, str] = {}
    for name, value in items:
        text_name = name.decode("latin-1")
        key = spelled.setdefault(text_name.lower(), text_name)
        text = value.decode("latin-1")
        out[key] = f"{out[key]}, {text}" if key in out else text
    return out
