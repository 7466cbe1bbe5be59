"""The control channel: connecting it, reading it, keeping it alive, losing it, reconnecting.

:class:`ControlChannel` owns the listener's one outbound WebSocket to the
relay. Its reader thread (``hybridconn-listener-<name>``) reads accepts and
requests (with their body frames) and hands each event to a
:class:`MessageSink` (the router); its timer (:mod:`.keepalive`) pings and
renews the token. When the channel is lost it tells its
:class:`ChannelObserver` (the listener) it is offline, waits as
:mod:`.reconnect` says, and connects again. A 404 while reconnecting is
terminal: the observer hears :meth:`ChannelObserver.channel_failed`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Optional, Protocol

from .._deadline import Deadline
from .._tcp import detect_dead_path
from .._transport import Dialer
from ..addresses import Namespace, listen_url
from ..auth import TokenProvider
from ..connection import CONTROL_MESSAGE_SIZE, HybridConnection
from ..exceptions import AuthenticationError, EndpointNotFoundError, HybridConnectionError, RelayTimeoutError
from ..protocol import CONTROL_CHANNEL_BODY_LIMIT, AssemblerEvent
from .keepalive import KeepAlive
from .reader import MessageReader, describe_event
from .reconnect import Backoff, is_service_restart, loss_error

__all__ = ["ControlChannel", "ChannelObserver", "MessageSink", "Link"]

log = logging.getLogger(__name__)

_READ_POLL = 5.0  # the reader re-checks its state at least this often


class MessageSink(Protocol):
    """Who takes what the control channel brings (the router)."""

    def control_message(self, event: AssemblerEvent, conn: HybridConnection) -> None:
        """One accept, request or violation read off the control channel ``conn``."""


class ChannelObserver(Protocol):
    """Who hears about the channel's life (the listener). Called from the reader thread,
    except the first ``channel_online`` when ``open()`` connects in the caller's thread."""

    def channel_connecting(self) -> None:
        """A connect attempt starts."""

    def channel_online(self, link: "Link") -> None:
        """The channel is up."""

    def channel_offline(self, error: HybridConnectionError) -> None:
        """The channel was lost; a reconnect follows."""

    def channel_retrying(self, error: HybridConnectionError, attempt: int) -> None:
        """A reconnect attempt failed; another follows."""

    def channel_failed(self, error: HybridConnectionError) -> None:
        """A terminal error (404): no more attempts."""


@dataclass
class Link:
    """One connected control channel: its socket, its token's lifetime, and why it died (if the timer said so)."""

    conn: HybridConnection
    expires_on: Optional[float]
    obtained_at: float
    opened_at: float = field(default_factory=time.monotonic)
    dead_error: Optional[HybridConnectionError] = None


class ControlChannel:
    """The listener's control channel and the reader thread that serves it."""

    def __init__(self, name: str, namespace: Namespace, path: str, provider: Optional[TokenProvider],
                 audience: str, dialer: Dialer, backoff: Backoff, *, ping_interval: float, ping_timeout: float,
                 sink: MessageSink, observer: ChannelObserver, keepalive: str = "pong") -> None:
        self.name = name
        self.namespace = namespace
        self.path = path
        self._provider = provider
        self._audience = audience
        self._dialer = dialer
        self.backoff = backoff
        renewable = provider is not None and provider.renewable
        self.keepalive = KeepAlive(name, ping_interval, ping_timeout, self.fresh_token if provider else None,
                                   renewable, self.declare_dead, mode=keepalive)
        self._sink = sink
        self._observer = observer
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._link: Optional[Link] = None
        self._reader: Optional[threading.Thread] = None
        self.connects = 0

    @property
    def link(self) -> Optional[Link]:
        """The channel now up, or None."""
        return self._link

    def fresh_token(self) -> "tuple[str, float]":
        """A token for the control channel (for the keepalive's renewals too)."""
        assert self._provider is not None
        return self._provider.get_token(self._audience)

    def connect(self, timeout: Optional[float] = None) -> Link:
        """Open a control channel now (in the caller's thread), within ``timeout`` (default: connect_timeout).

        Raises the handshake's error.
        """
        return self._connect(self._dialer.connect_timeout if timeout is None else timeout)

    def _connect(self, timeout: float) -> Link:
        token, expires_on = None, None
        if self._provider is not None:
            try:
                token, expires_on = self.fresh_token()
            except HybridConnectionError:
                raise
            except Exception as exc:  # noqa: BLE001 - a provider may fail in any way
                raise AuthenticationError(None, f"the token provider failed: {type(exc).__name__}") from exc
        obtained_at = time.time()
        # sb-hc-id: the listener's listener_id when set, the same on every connection (as .NET's
        # TrackingContext id), so senders' AllowedListeners can name it; else a fresh one, for tracing.
        conn_id = str(getattr(self._observer, "listener_id", None) or uuid.uuid4())
        query_token, headers = self._dialer.place_token(token)
        url = listen_url(self.namespace, self.path, id=conn_id, token=query_token)
        ws = self._dialer.open(url, what="listen", headers=headers, timeout=timeout)
        # A path that drops every packet kills the socket (the keep-alive goes unacknowledged).
        detect_dead_path(ws.sock, self.keepalive.ping_interval, self.keepalive.ping_timeout)
        self.connects += 1
        conn = HybridConnection(
            ws, id=conn_id, io_timeout=self._dialer.io_timeout, max_message_size=CONTROL_MESSAGE_SIZE
        )
        return Link(conn, expires_on, obtained_at)

    def start(self, first: Optional[Link]) -> None:
        """Start the timer and the reader (serving ``first`` if ``open()`` already connected it)."""
        self.keepalive.start()
        if first is not None and not self._go_online(first):
            first = None
        self._reader = threading.Thread(target=self._run, args=(first,), name=f"hybridconn-listener-{self.name}",
                                        daemon=True)
        self._reader.start()

    def _go_online(self, link: Link) -> bool:
        with self._lock:
            keep = not self._stopping.is_set()
            if keep:
                self._link = link
        if not keep:
            link.conn.close(1000, "listener closing", timeout=1.0)
            return False
        self.keepalive.attach(link.conn, link.expires_on, link.obtained_at)
        log.info("listener %s is online (sb-hc-id %s)", self.path, link.conn.id)
        self._observer.channel_online(link)
        return True

    # ------------------------------------------------------------------ the reader thread

    def _run(self, link: Optional[Link]) -> None:
        try:
            while not self._stopping.is_set():
                if link is None:
                    link = self._reconnect()
                    if link is None:
                        return
                self._read(link)
                self._lost(link)
                link = None
        except Exception:  # noqa: BLE001 - last resort: report and stop rather than die silently
            log.exception("listener %s reader failed", self.path)
            self._observer.channel_failed(HybridConnectionError("the listener's reader thread failed; see the log"))

    def _read(self, link: Link) -> None:
        reader = MessageReader(link.conn, max_body=CONTROL_CHANNEL_BODY_LIMIT)
        while True:
            try:
                events = reader.read(timeout=_READ_POLL)
            except RelayTimeoutError:
                continue
            except HybridConnectionError:  # ConnectionClosed, or a broken frame
                return
            for event in events:
                try:
                    self._sink.control_message(event, link.conn)
                except Exception:  # noqa: BLE001
                    # Only what kind of message and its id: the message holds headers and a body.
                    log.exception("listener %s could not dispatch %s", self.path, describe_event(event))

    def _lost(self, link: Link) -> None:
        conn = link.conn
        self.keepalive.detach(conn)
        conn.abort()
        with self._lock:
            if self._link is link:
                self._link = None
            if self._stopping.is_set():
                return
        error = link.dead_error or loss_error(conn)
        self.backoff.channel_ended(link.opened_at, service_restart=is_service_restart(conn))
        log.warning("listener %s went offline: %s", self.path, error)
        self._observer.channel_offline(error)

    def declare_dead(self, conn: HybridConnection, error: HybridConnectionError) -> None:
        """The keepalive's verdict: ``conn`` is unresponsive. Abort it; the reader reconnects."""
        link = self._link
        if link is not None and link.conn is conn:
            link.dead_error = error
        conn.abort()

    def _reconnect(self) -> Optional[Link]:
        while not self._stopping.is_set():
            delay = self.backoff.next_delay()
            if delay and self._stopping.wait(delay):
                return None
            self._observer.channel_connecting()
            try:
                link = self.connect()
            except EndpointNotFoundError as exc:
                self._observer.channel_failed(exc)
                return None
            except HybridConnectionError as exc:
                self.backoff.attempted()
                log.warning("listener %s could not reconnect (attempt %d): %s", self.path, self.backoff.attempt, exc)
                self._observer.channel_retrying(exc, self.backoff.attempt)
                continue
            self.backoff.attempted()
            return link if self._go_online(link) else None
        return None

    # ------------------------------------------------------------------ closing

    def stop(self) -> None:
        """No more reconnects; a link that comes up from now on is closed at once."""
        self._stopping.set()

    def leave(self, until: Deadline) -> bool:
        """Leave the relay: no more reconnects, and a close frame on the channel now.

        The relay stops routing to this listener as soon as it reads the close; what it had
        already sent is still read and dispatched until its answering close arrives (or
        ``until``). True when the channel ended in time.
        """
        self.stop()
        link = self._link
        if link is None:
            return True
        self.keepalive.detach(link.conn)
        link.conn.shutdown_send(1000, "listener draining", timeout=until.left(cap=2.0, floor=0.1))
        reader = self._reader
        return reader is None or until.join(reader)

    def close(self, until: Deadline) -> None:
        """Close the channel with 1000 (waiting at most a second for the relay's answer) and tell the
        timer to stop. The reader ends once the socket is closed; :meth:`join` waits for both."""
        self.stop()
        self.keepalive.stop()
        with self._lock:
            link, self._link = self._link, None
        if link is not None:
            link.conn.close(1000, "listener closing", timeout=until.left(cap=1.0, floor=0.1))

    def join(self, until: Deadline) -> bool:
        """Wait for the reader and the timer until ``until``; True when both have ended."""
        reader = self._reader
        return (reader is None or until.join(reader)) and self.keepalive.join(until)
