"""The listener's control channel: connecting it, the reader thread, losing it, reconnecting.

:class:`ControlLoop` is the part of :class:`~hybridconn.listener.HybridConnectionListener`
that owns the control channel. One reader thread (``hybridconn-listener-<path>``)
reads accepts and requests (with their body frames) and hands each to
``_dispatch``; when the channel is lost it reports offline (once per
online -> offline transition), backs off with jitter (:func:`backoff_delay`)
and reconnects. A 404 while reconnecting is terminal: the listener stops and
keeps the error for ``serve_forever()``/``open()``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence, Tuple

from ._keepalive import KeepAlive, backoff_delay, loss_error
from ._rendezvous import MessageReader
from ._transport import HandshakeSet, Verify, open_websocket
from .addresses import Namespace, listen_url
from .auth import AUTH_HEADER, TokenProvider
from .connection import HybridConnection
from .exceptions import AuthenticationError, EndpointNotFoundError, HybridConnectionError, RelayTimeoutError
from .protocol import CONTROL_CHANNEL_BODY_LIMIT

__all__ = ["ControlLoop", "Channel", "STABLE_AFTER"]

# The listener's logger: these lines are the listener's story (online, offline, reconnecting).
log = logging.getLogger("hybridconn.listener")

#: A channel that stayed up this long resets the backoff to its first step.
STABLE_AFTER = 5.0
_READ_POLL = 5.0  # the reader re-checks its state at least this often


@dataclass
class Channel:
    """One control channel: its socket, its token's lifetime, and why it died (if the timer said so)."""

    conn: HybridConnection
    expires_on: Optional[float]
    obtained_at: float
    opened_at: float = field(default_factory=time.monotonic)
    dead_error: Optional[HybridConnectionError] = None


class ControlLoop:
    """The control channel's life, mixed into the listener (which sets these attributes up)."""

    namespace: Namespace
    path: str
    verify: Verify
    proxy: Optional[str]
    token_in_query: bool
    io_timeout: float
    connect_timeout: float
    backoff: Sequence[float]
    jitter: float
    last_error: Optional[BaseException]
    _provider: Optional[TokenProvider]
    _audience: str
    _lock: "threading.RLock"
    _state: str
    _stopping: threading.Event
    _online: threading.Event
    _settled: threading.Event
    _channel: Optional[Channel]
    _attempt: int
    _fatal: Optional[BaseException]
    _offline_reported: bool
    _keepalive: KeepAlive
    _handshakes: HandshakeSet
    _notify: Callable[..., None]
    _count: Callable[[str], None]
    _dispatch: Callable[[Channel, Any], None]
    close: Callable[..., None]

    def _fresh_token(self) -> Tuple[str, float]:
        assert self._provider is not None
        return self._provider.get_token(self._audience)

    def _connect(self, timeout: float) -> Channel:
        token, expires_on = None, None
        if self._provider is not None:
            try:
                token, expires_on = self._fresh_token()
            except HybridConnectionError:
                raise
            except Exception as exc:  # noqa: BLE001 - a provider may fail in any way
                raise AuthenticationError(None, f"the token provider failed: {type(exc).__name__}") from exc
        obtained_at = time.time()
        conn_id = str(uuid.uuid4())  # sb-hc-id: one per connection, for tracing
        url = listen_url(self.namespace, self.path, id=conn_id, token=token if self.token_in_query else None)
        headers = {AUTH_HEADER: token} if token and not self.token_in_query else None
        ws = open_websocket(url, headers=headers, timeout=timeout, verify=self.verify, proxy=self.proxy, what="listen",
                            handshakes=self._handshakes)
        self._count("connects")
        return Channel(HybridConnection(ws, id=conn_id, io_timeout=self.io_timeout), expires_on, obtained_at)

    def _go_online(self, channel: Channel) -> bool:
        with self._lock:
            if self._stopping.is_set():
                keep = False
            else:
                keep, self._channel, self._state = True, channel, "online"
        if not keep:
            channel.conn.close(1000, "listener closing", timeout=1.0)
            return False
        self._keepalive.attach(channel.conn, channel.expires_on, channel.obtained_at)
        self._offline_reported = False
        self._online.set()
        self._settled.set()
        log.info("listener %s is online (sb-hc-id %s)", self.path, channel.conn.id)
        self._notify("on_online")
        return True

    # ------------------------------------------------------------------ the reader thread

    def _run(self, channel: Optional[Channel]) -> None:
        try:
            while not self._stopping.is_set():
                if channel is None:
                    channel = self._reconnect()
                    if channel is None:
                        return
                self._read(channel)
                self._lost(channel)
                channel = None
        except Exception:  # noqa: BLE001 - last resort: report and stop rather than die silently
            log.exception("listener %s reader failed", self.path)
            self._fail(HybridConnectionError("the listener's reader thread failed; see the log"))

    def _read(self, channel: Channel) -> None:
        reader = MessageReader(channel.conn, max_body=CONTROL_CHANNEL_BODY_LIMIT)
        while True:
            try:
                events = reader.read(timeout=_READ_POLL)
            except RelayTimeoutError:
                continue
            except HybridConnectionError:  # ConnectionClosed, or a broken frame
                return
            for event in events:
                try:
                    self._dispatch(channel, event)
                except Exception:  # noqa: BLE001
                    # Only what kind of message and its id: the message holds headers and a body.
                    log.exception("listener %s could not dispatch %s", self.path, _describe(event))

    def _lost(self, channel: Channel) -> None:
        conn = channel.conn
        self._keepalive.detach(conn)
        conn.abort()
        with self._lock:
            if self._channel is channel:
                self._channel = None
            self._online.clear()
            if self._stopping.is_set():
                return
            self._state = "offline"
        error = channel.dead_error or loss_error(conn)
        self.last_error = error
        if time.monotonic() - channel.opened_at >= STABLE_AFTER:
            self._attempt = 0
        log.warning("listener %s went offline: %s", self.path, error)
        self._report_offline(error)

    def _channel_dead(self, conn: HybridConnection, error: HybridConnectionError) -> None:
        channel = self._channel
        if channel is not None and channel.conn is conn:
            channel.dead_error = error
        conn.abort()

    def _reconnect(self) -> Optional[Channel]:
        while not self._stopping.is_set():
            delay = backoff_delay(self.backoff, self._attempt, self.jitter)
            if delay and self._stopping.wait(delay):
                return None
            self._notify("on_connecting")
            try:
                channel = self._connect(self.connect_timeout)
            except EndpointNotFoundError as exc:
                self._fail(exc)
                return None
            except HybridConnectionError as exc:
                self._attempt += 1
                self.last_error = exc
                log.warning("listener %s could not reconnect (attempt %d): %s", self.path, self._attempt, exc)
                continue
            self._attempt += 1
            return channel if self._go_online(channel) else None
        return None

    def _fail(self, error: BaseException) -> None:
        """A terminal error (404): stop the listener and keep the error for serve_forever()/open()."""
        log.error("listener %s stopped: %s", self.path, error)
        self.last_error = self._fatal = error
        self._report_offline(error)
        self.close()

    def _report_offline(self, error: Optional[BaseException]) -> None:
        """Call on_offline once per online -> offline transition (a 404 while reconnecting is not a second one)."""
        with self._lock:
            if self._offline_reported:
                return
            self._offline_reported = True
        self._notify("on_offline", error)


def _describe(event: Any) -> str:
    """An event as its message kind and id, for logs (never its headers or body)."""
    message = getattr(event, "message", None)
    kind = type(message).__name__ if message is not None else "no message"
    return f"{type(event).__name__}({kind} id={getattr(message, 'id', None) or '-'})"
