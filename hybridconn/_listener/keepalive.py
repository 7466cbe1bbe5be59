"""The listener's one timer thread: keep-alive frames, liveness, and token renewal.

Every ``ping_interval`` seconds a keep-alive frame goes out on the control
channel. By default (``mode="pong"``) it is an unsolicited WebSocket Pong, as
every Microsoft client sends (RFC 6455 5.5.3 allows them; a user reported the
service closing the channel on a Ping, azure-relay-dotnet #103). A Pong asks
for no answer, so a dead path is found by the kernel instead:
:mod:`hybridconn._tcp` sets ``TCP_USER_TIMEOUT`` (``ping_timeout``) on the
socket, so the Pong's bytes going unacknowledged kill it and the reader
reconnects, within ``ping_interval + ping_timeout`` of the path dying.

With ``mode="ping"`` a WebSocket Ping goes out instead; if no frame at all (a
pong, a request, anything) has arrived ``ping_timeout`` seconds after it, the
channel is declared dead and handed to ``on_dead``, which aborts it so the
reader reconnects. The TCP options apply in both modes.

The token is renewed (a ``renewToken`` message) when 80 % of its lifetime has
passed, but at least 30 s before it expires; short-lived tokens are renewed at
half their life so there is always room for the round trip.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

from .._deadline import Deadline
from .._redact import redact
from ..auth import renewal_point
from ..connection import HybridConnection
from ..exceptions import ConnectionClosed, HybridConnectionError, RelayTimeoutError
from ..protocol import RenewToken, serialize_message

__all__ = ["KeepAlive", "TokenSource", "DeadCallback", "KEEPALIVE_MODES"]

log = logging.getLogger(__name__)

TokenSource = Callable[[], Tuple[str, float]]
DeadCallback = Callable[[HybridConnection, HybridConnectionError], None]

#: A failed or premature renewal is retried after at most this long.
RENEW_RETRY_MAX = 5.0

#: ``"pong"``: unsolicited Pongs (the default); ``"ping"``: Pings that must be answered.
KEEPALIVE_MODES = ("pong", "ping")


@dataclass
class _Watch:
    """What the timer knows about the current control channel."""

    conn: HybridConnection
    expires_on: Optional[float]
    renew_at: Optional[float]
    next_ping: float
    ping_sent_at: Optional[float] = None
    warned_static: bool = False


class KeepAlive:
    """One thread (``hybridconn-keepalive-<path>``) watching the current control channel.

    :param token_source: returns a fresh ``(token, expires_on)``; None for anonymous listeners.
    :param renewable: False when the source always returns the same token (a warning is
        logged before it expires instead of renewing).
    :param on_dead: called (from the timer thread) with the channel and the error when
        a ping went unanswered; it must abort the channel.
    """

    def __init__(
        self,
        path: str,
        ping_interval: float,
        ping_timeout: float,
        token_source: Optional[TokenSource],
        renewable: bool,
        on_dead: DeadCallback,
        clock: Callable[[], float] = time.time,
        mode: str = "pong",
    ) -> None:
        if ping_interval <= 0 or ping_timeout <= 0:
            raise ValueError("ping_interval and ping_timeout must be positive")
        if mode not in KEEPALIVE_MODES:
            raise ValueError(f"keepalive must be one of {', '.join(KEEPALIVE_MODES)}")
        self.mode = mode
        self.path = path
        self.ping_interval = float(ping_interval)
        self.ping_timeout = float(ping_timeout)
        self._token_source = token_source
        self._renewable = renewable
        self._on_dead = on_dead
        self._clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._watch: Optional[_Watch] = None
        self._thread = threading.Thread(target=self._run, name=f"hybridconn-keepalive-{path}", daemon=True)
        self.renewals = 0

    # ------------------------------------------------------------------ control

    def start(self) -> None:
        self._thread.start()

    def attach(self, conn: HybridConnection, expires_on: Optional[float], obtained_at: Optional[float] = None) -> None:
        """Watch a new control channel whose token expires at ``expires_on`` (unix seconds)."""
        obtained = self._clock() if obtained_at is None else obtained_at
        renew_at = None if expires_on is None else renewal_point(obtained, expires_on)
        with self._lock:
            self._watch = _Watch(
                conn=conn,
                expires_on=expires_on,
                renew_at=renew_at,
                next_ping=time.monotonic() + self.ping_interval,
            )
        self._wake.set()

    def detach(self, conn: Optional[HybridConnection] = None) -> None:
        """Stop watching (only ``conn``'s watch, if given)."""
        with self._lock:
            if self._watch is not None and (conn is None or self._watch.conn is conn):
                self._watch = None
        self._wake.set()

    def stop(self) -> None:
        """Tell the thread to end (see :meth:`join`)."""
        self._stop.set()
        self._wake.set()

    def join(self, until: Deadline) -> bool:
        """True when the thread has ended before ``until``."""
        return until.join(self._thread)

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                delay = self._tick()
            except Exception:  # noqa: BLE001 - the timer must outlive any one failure
                log.exception("keepalive timer error on %s", self.path)
                delay = 1.0
            self._wake.wait(delay)
            self._wake.clear()

    def _tick(self) -> Optional[float]:
        """Do what is due; return seconds until the next thing is (None: nothing to watch)."""
        with self._lock:
            watch = self._watch
        if watch is None:
            return None
        if watch.conn.closed:
            self.detach(watch.conn)
            return None
        now = time.monotonic()
        if watch.ping_sent_at is not None and now >= watch.ping_sent_at + self.ping_timeout:
            if watch.conn.last_activity < watch.ping_sent_at:
                self._declare_dead(watch, f"no frame within {self.ping_timeout:g} s of a ping")
                return None
            watch.ping_sent_at = None
        if now >= watch.next_ping:
            if not self._ping(watch, now):
                return None
        if watch.renew_at is not None and self._clock() >= watch.renew_at:
            self._renew(watch)
        return self._next_delay(watch)

    def _next_delay(self, watch: _Watch) -> float:
        now = time.monotonic()
        due = [watch.next_ping - now]
        if watch.ping_sent_at is not None:
            due.append(watch.ping_sent_at + self.ping_timeout - now)
        if watch.renew_at is not None:
            due.append(watch.renew_at - self._clock())
        return max(0.0, min(due))

    def _ping(self, watch: _Watch, now: float) -> bool:
        watch.next_ping = now + self.ping_interval
        pinging = self.mode == "ping"
        if pinging and watch.ping_sent_at is None:
            watch.ping_sent_at = now
        try:
            # A send lock held longer than the ping timeout means the relay stopped reading.
            if pinging:
                watch.conn.ping(timeout=self.ping_timeout)
            else:
                watch.conn.pong(timeout=self.ping_timeout)
        except RelayTimeoutError:
            self._declare_dead(watch, f"could not send a keep-alive within {self.ping_timeout:g} s")
            return False
        except ConnectionClosed:
            self.detach(watch.conn)  # the reader sees the close and reconnects
            return False
        return True

    def _declare_dead(self, watch: _Watch, why: str) -> None:
        self.detach(watch.conn)
        error = RelayTimeoutError(f"control channel of {self.path!r} is unresponsive: {why}")
        log.warning("%s; reconnecting", error)
        try:
            self._on_dead(watch.conn, error)
        except Exception:  # noqa: BLE001
            log.exception("keepalive on_dead callback failed")

    def _renew(self, watch: _Watch) -> None:
        now = self._clock()
        expires_on = watch.expires_on if watch.expires_on is not None else now
        if self._token_source is None:
            watch.renew_at = None
            return
        if not self._renewable:
            if not watch.warned_static:
                watch.warned_static = True
                log.warning(
                    "the listener token for %r cannot be renewed (a fixed SharedAccessSignature) and expires in "
                    "%.0f s; the relay will then close the control channel",
                    self.path,
                    max(0.0, expires_on - now),
                )
            watch.renew_at = None
            return
        try:
            token, new_expiry = self._token_source()
        except Exception as exc:  # noqa: BLE001 - a provider may fail in any way; retry
            log.warning("token renewal for %r failed: %s", self.path, redact(f"{type(exc).__name__}: {exc}"))
            watch.renew_at = now + self._retry_delay(expires_on, now)
            return
        if new_expiry <= expires_on:
            # The provider still hands out the current token (it caches); ask again shortly.
            watch.renew_at = now + self._retry_delay(expires_on, now)
            return
        try:
            # Bounded: a send lock held longer than the ping timeout means the relay stopped reading.
            watch.conn.send(serialize_message(RenewToken(token)), timeout=self.ping_timeout)
        except RelayTimeoutError:
            # A handler's write holds the channel (the relay stopped reading): as with a ping,
            # the channel is dead, and the one timer thread must not wait on it.
            self._declare_dead(watch, f"could not send the renewed token within {self.ping_timeout:g} s")
            return
        except ConnectionClosed:
            self.detach(watch.conn)
            return
        self.renewals += 1
        log.debug("renewed the listener token for %r; it now expires in %.0f s", self.path, new_expiry - now)
        watch.expires_on = new_expiry
        watch.renew_at = renewal_point(now, new_expiry)

    @staticmethod
    def _retry_delay(expires_on: float, now: float) -> float:
        return min(RENEW_RETRY_MAX, max(0.1, (expires_on - now) / 4))

