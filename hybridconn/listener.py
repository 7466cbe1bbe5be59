"""HybridConnectionListener: options, dispatch of what the control channel brings, lifecycle.

One reader thread (``hybridconn-listener-<path>``, :mod:`hybridconn._control`)
owns the control channel: it reads accepts and requests (with their body
frames) and hands them here, and when the channel is lost it reports
offline, backs off with jitter and reconnects. A timer thread
(:mod:`hybridconn._keepalive`) pings and renews the token. Responses are written by :mod:`hybridconn._dispatch`,
rendezvous sockets kept by :mod:`hybridconn._rendezvous`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, Optional, Sequence, Union

from ._accepting import Acceptor, ConnectionRequest
from ._control import Channel, ControlLoop
from ._dispatch import Hook, Reply, WorkPool, call_handler, error_response, relayed_request
from ._keepalive import KeepAlive
from ._rendezvous import RendezvousSet, open_request_socket, refuse_request
from ._transport import HandshakeSet, Verify
from .addresses import Namespace, token_audience
from .auth import ConnectionString, TokenProviderLike, as_token_provider
from .connection import HybridConnection
from .exceptions import ConfigurationError, ConnectionClosed, HybridConnectionError
from .protocol import Accept, MessageReceived, ProtocolViolation, Request
from .relayed import RelayedRequest

__all__ = ["HybridConnectionListener", "ConnectionRequest"]

log = logging.getLogger(__name__)

#: Default ``max_request_body``: larger request bodies are dropped and answered 413.
DEFAULT_MAX_REQUEST_BODY = 64 * 1024 * 1024


class HybridConnectionListener(ControlLoop):
    """Listens on a hybrid connection and serves its HTTP requests and WebSocket connections.

    :param namespace: host name or base URL (``ws://127.0.0.1:9350`` for the emulator).
    :param path: the hybrid connection's name.
    :param token_provider: a TokenProvider, a callable ``audience -> (token, expires_on)``, or None.
    :param max_workers: handler threads. :param max_pending: work queued beyond them before
        requests are answered 503 and sockets rejected 503 (also bounds the accept queue).
    :param ping_interval: seconds between pings on the control channel; :param ping_timeout: seconds
        without any frame after a ping before the channel is declared dead and replaced.
    :param retry_on_open: keep trying in ``open()`` instead of raising on 401/403/unreachable.
    :param backoff: reconnect delays in seconds (the last repeats), each with +-``jitter`` (a fraction).
    :param subprotocols: WebSocket subprotocols this application speaks, in no order. A sender
        offering only others is rejected with 400; with none configured, every socket is accepted
        without a subprotocol (whatever the sender offered).
    :param token_in_query: send the token as ``sb-hc-token`` instead of the ``ServiceBusAuthorization`` header.
    :param io_timeout: socket timeout for a stalled frame read or send.
    :param rendezvous_idle_timeout: seconds a kept request rendezvous socket may sit idle (no frames,
        no response pending) before it is closed, so idle keep-alive senders do not hold
        ``max_rendezvous`` forever; None keeps them until the sender closes.
    :param max_request_body: largest request body in bytes (default 64 MiB); a larger one is read
        and dropped as it arrives and answered 413. None: no limit (bodies are held in memory).
    """

    on_request = Hook()
    on_connection = Hook()
    on_accept = Hook()
    on_online = Hook()
    on_offline = Hook()
    on_connecting = Hook()

    def __init__(
        self,
        namespace: Union[str, Namespace],
        path: str,
        token_provider: TokenProviderLike = None,
        *,
        max_workers: int = 16,
        max_pending: int = 256,
        max_rendezvous: int = 128,
        ping_interval: float = 30.0,
        ping_timeout: float = 10.0,
        retry_on_open: bool = False,
        backoff: Sequence[float] = (0, 1, 2, 5, 10, 30),
        jitter: float = 0.2,
        subprotocols: Optional[Sequence[str]] = None,
        verify: Verify = True,
        proxy: Optional[str] = None,
        token_in_query: bool = False,
        io_timeout: float = 30.0,
        connect_timeout: float = 30.0,
        rendezvous_idle_timeout: Optional[float] = 120.0,
        max_request_body: Optional[int] = DEFAULT_MAX_REQUEST_BODY,
        name: Optional[str] = None,
    ) -> None:
        self.namespace = Namespace.parse(namespace)
        if not isinstance(path, str) or not path.strip("/"):
            raise ConfigurationError("path must name a hybrid connection")
        self.path = path.strip("/")
        self.name = name or self.path
        self._provider = as_token_provider(token_provider)
        self._audience = token_audience(self.namespace, self.path)
        self.retry_on_open, self.backoff, self.jitter = retry_on_open, tuple(backoff), jitter
        self.verify, self.proxy, self.token_in_query = verify, proxy, token_in_query
        self.io_timeout, self.connect_timeout = io_timeout, connect_timeout
        self._hooks: Dict[str, Optional[Callable[..., Any]]] = {}
        self._lock = threading.RLock()
        self._state = "new"
        self._stopping = threading.Event()
        self._online = threading.Event()
        self._closed = threading.Event()
        self._settled = threading.Event()  # online for the first time, or closed: open() may return
        self._channel: Optional[Channel] = None
        self._reader: Optional[threading.Thread] = None
        self._attempt = 0
        self.last_error: Optional[BaseException] = None
        self._fatal: Optional[BaseException] = None
        self._pool = WorkPool(self.name, max_workers, max_pending)
        self._overflow = WorkPool(self.name, 2, 32, role="overflow")
        self._handshakes = HandshakeSet()  # close() ends handshakes in progress instead of waiting them out
        self.max_request_body = max_request_body
        self._rendezvous = RendezvousSet(self.name, self._on_rendezvous_request, max_rendezvous,
                                         on_refuse=self._refuse_on_rendezvous, idle_timeout=rendezvous_idle_timeout,
                                         max_body=max_request_body)
        self._acceptor = Acceptor(self.path, self._hooks, self._rendezvous, self._stopping,
                                  queue_size=max_pending, subprotocols=subprotocols or (),
                                  connect_timeout=connect_timeout, io_timeout=io_timeout, verify=verify, proxy=proxy,
                                  handshakes=self._handshakes)
        renewable = self._provider is not None and self._provider.renewable
        self._keepalive = KeepAlive(self.name, ping_interval, ping_timeout, self._fresh_token if self._provider else None,
                                    renewable, self._channel_dead)
        self._stats = {"requests": 0, "busy": 0, "connects": 0, "rendezvous_opened": 0}
        self._stats_lock = threading.Lock()  # counters are bumped from the reader and every pool thread
        self._offline_reported = True  # on_offline fires once per online -> offline transition

    @classmethod
    def from_connection_string(cls, connection_string: Union[str, ConnectionString], path: Optional[str] = None,
                               token_ttl: float = 3600, **options: Any) -> "HybridConnectionListener":
        """A listener from ``Endpoint=...;SharedAccessKeyName=...;SharedAccessKey=...[;EntityPath=...]``.

        A SharedAccessKey gives a provider minting tokens valid ``token_ttl`` seconds;
        ``token_provider=`` in ``options`` replaces it.
        """
        cs = connection_string if isinstance(connection_string, ConnectionString) else ConnectionString.parse(
            connection_string)
        provider = options.pop("token_provider", None) or cs.token_provider(ttl=token_ttl)
        return cls(cs.namespace, cs.resolve_path(path), provider, **options)

    # ------------------------------------------------------------------ state

    @property
    def is_online(self) -> bool:
        return self._online.is_set()

    @property
    def state(self) -> str:
        """``new``, ``online``, ``offline`` (reconnecting), ``closing`` or ``closed``."""
        return self._state

    @property
    def stats(self) -> Dict[str, int]:
        """Counters: requests served, busy (503) answers, sockets accepted/rejected, control-channel connects."""
        with self._stats_lock:
            counters = dict(self._stats)
        return dict(counters, accepted=self._acceptor.accepted, rejected=self._acceptor.rejected,
                    in_flight=self._pool.in_flight,
                    sockets=self._rendezvous.sockets, renewals=self._keepalive.renewals)

    def __repr__(self) -> str:
        return (f"<HybridConnectionListener path={self.path!r} namespace={self.namespace.ws_base} state={self._state} "
                f"in_flight={self._pool.in_flight} sockets={self._rendezvous.sockets}>")

    def __enter__(self) -> "HybridConnectionListener":
        if self._state == "new":
            self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _count(self, name: str) -> None:
        with self._stats_lock:
            self._stats[name] += 1

    def _notify(self, hook: str, *args: Any) -> None:
        handler = self._hooks.get(hook)
        if handler is not None:
            try:
                handler(*args)
            except Exception:  # noqa: BLE001 - a callback must never break the listener
                log.exception("%s callback of listener %s failed", hook, self.path)

    # ------------------------------------------------------------------ open / connect

    def open(self, timeout: Optional[float] = 30.0) -> None:
        """Connect the control channel; return once online.

        Raises AuthenticationError (401), AuthorizationError (403), EndpointNotFoundError (404),
        RelayConnectionError or RelayTimeoutError. With ``retry_on_open=True`` only 404 raises;
        other failures are retried in the background and ``open()`` returns after ``timeout``
        even if not yet online (see ``is_online`` and ``last_error``).
        """
        with self._lock:
            if self._state in ("closing", "closed"):
                raise HybridConnectionError("the listener is closed; create a new one")
            if self._state != "new":
                return
            self._state = "offline"
        channel: Optional[Channel] = None
        if not self.retry_on_open:
            self._notify("on_connecting")
            try:
                channel = self._connect(self.connect_timeout if timeout is None else timeout)
            except BaseException as exc:
                with self._lock:
                    self._state = "new"
                self.last_error = exc
                raise
        self._keepalive.start()
        if channel is not None:
            self._go_online(channel)
        self._reader = threading.Thread(target=self._run, args=(channel,), name=f"hybridconn-listener-{self.name}",
                                        daemon=True)
        self._reader.start()
        if channel is None:
            if not self._settled.wait(timeout):
                log.warning("listener %s not online after %s s; still retrying (last error: %s)",
                            self.path, timeout, self.last_error)
            if self._fatal is not None:
                raise self._fatal

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self, channel: Channel, event: Any) -> None:
        if isinstance(event, ProtocolViolation):
            log.warning("protocol violation on the control channel of %s: %s", self.path, event.error)
            if isinstance(event.message, Request):
                Reply(event.message.id, control=channel.conn).send(error_response(400, "Bad Request"))
            return
        assert isinstance(event, MessageReceived)
        message = event.message
        if isinstance(message, Accept):
            self._on_accept_message(message)
        elif isinstance(message, Request) and message.is_address_only:
            connect = lambda: self._open_request_socket(message.address)  # noqa: E731
            if self._stopping.is_set() or not self._rendezvous.serve(None, connect):
                self._busy("http", self._refuse_rendezvous_request, message)
        elif isinstance(message, Request):
            reply = Reply(message.id, control=channel.conn, address=message.address,
                          open_rendezvous=self._open_response_socket, adopt=self._adopt_rendezvous)
            if self.max_request_body is not None and len(event.body or b"") > self.max_request_body:
                reply.send(error_response(413, "Payload Too Large"))
                return
            self._submit_request(relayed_request(message, event.body or b"", self.path, False), reply)
        else:
            log.warning("unexpected %s message on the control channel of %s", type(message).__name__, self.path)

    def _submit_request(self, request: RelayedRequest, reply: Reply) -> None:
        closing = error_response(503, "Service Unavailable: the listener is closing")
        if self._stopping.is_set() or not self._pool.submit("http", self._serve_request, request, reply,
                                                            on_drop=lambda: reply.send(closing)):
            self._count("busy")
            why = "closing" if self._stopping.is_set() else "busy"
            log.warning("listener %s is %s: answering 503 to %s %s", self.path, why, request.method, request.target)
            reply.send(error_response(503, f"Service Unavailable: the listener is {why}"))

    def _serve_request(self, request: RelayedRequest, reply: Reply) -> None:
        self._count("requests")
        reply.send(call_handler(self._hooks.get("on_request"), request))

    def _busy(self, kind: str, fn: Callable[..., None], *args: Any) -> None:
        self._count("busy")
        if not self._overflow.submit(kind, fn, *args):
            log.warning("listener %s is overloaded; dropped a %s without answering", self.path, kind)

    # ------------------------------------------------------------------ rendezvous requests

    def _open_request_socket(self, address: str) -> HybridConnection:
        self._count("rendezvous_opened")
        return open_request_socket(address, timeout=self.connect_timeout, io_timeout=self.io_timeout,
                                   verify=self.verify, proxy=self.proxy, handshakes=self._handshakes)

    def _open_response_socket(self, address: str) -> HybridConnection:
        """A rendezvous for a large response, tracked at once so close() can close it mid-response."""
        conn = self._open_request_socket(address)
        if not self._rendezvous.track(conn):
            raise ConnectionClosed(1001, "listener closing")
        return conn

    def _adopt_rendezvous(self, conn: HybridConnection) -> None:
        """Keep serving a socket opened for a response, or close and forget it."""
        if conn.closed or not self._rendezvous.serve(conn):
            conn.close(1000, "", timeout=2.0)
            self._rendezvous.forget(conn)

    def _on_rendezvous_request(self, conn: HybridConnection, message: Request, body: bytes,
                               done: Callable[[], None]) -> None:
        self._submit_request(relayed_request(message, body, self.path, True),
                             Reply(message.id, rendezvous=conn, on_done=done))

    def _refuse_on_rendezvous(self, conn: HybridConnection, message: Request, status: int, text: str) -> None:
        Reply(message.id, rendezvous=conn).send(error_response(status, text))

    def _refuse_rendezvous_request(self, message: Request) -> None:
        busy = error_response(503, "Service Unavailable: the listener is busy")
        refuse_request(message.address, message.id, lambda conn: Reply(message.id, rendezvous=conn).send(busy),
                       timeout=self.connect_timeout, io_timeout=self.io_timeout, verify=self.verify, proxy=self.proxy,
                       handshakes=self._handshakes)

    # ------------------------------------------------------------------ WebSocket connections

    def _on_accept_message(self, message: Accept) -> None:
        acceptor, why, reserved = self._acceptor, "", False
        if self._stopping.is_set():
            why = "closing"
        elif acceptor.must_queue():
            reserved = acceptor.queue.reserve()
            why = "" if reserved else "holding too many unaccepted connections"

        def dropped() -> None:
            if reserved:
                acceptor.queue.release()
            acceptor.reject(message, 503, "Service Unavailable: the listener is closing")

        if not why and not self._pool.submit("ws", acceptor.serve, message, reserved, on_drop=dropped):
            why = "busy"
            if reserved:
                acceptor.queue.release()
        if why:
            self._busy("ws", acceptor.reject, message, 503, f"Service Unavailable: the listener is {why}")

    def accept_connection(self, timeout: Optional[float] = None) -> Optional[HybridConnection]:
        """The next accepted WebSocket (when no ``on_connection`` is set); None once closed.

        :raises RelayTimeoutError: none arrived within ``timeout`` seconds.
        """
        return self._acceptor.take(timeout)

    # ------------------------------------------------------------------ lifecycle

    def serve_forever(self) -> None:
        """Open if needed and block until closed; Ctrl-C closes cleanly. Raises a terminal error (404)."""
        if self._state == "new":
            self.open()
        try:
            while not self._closed.wait(0.5):
                pass
        except KeyboardInterrupt:
            log.info("interrupted; closing listener %s", self.path)
            self.close()
            return
        if self._fatal is not None:
            raise self._fatal

    def _wait_aborting(self, done: Callable[[float], bool], deadline: float) -> None:
        """Wait in slices for ``done(slice_end)`` until ``deadline``, ending handshakes between slices.

        websocket-client hands a handshake's socket over only once the TCP connection (and a
        proxy tunnel) is up, so a handshake that was just starting at the first abort is caught
        by a later one.
        """
        while True:
            self._handshakes.abort_all()
            now = time.monotonic()
            if done(min(deadline, now + 0.2)) or now >= deadline:
                return

    def _refuse_queued(self, deadline: float) -> None:
        """Answer 503 to the work still queued (every request gets a response), while the channel is up.

        In a thread of its own, joined until ``deadline``: a hung network must not hold close();
        closing the channel then ends a send stuck in it.
        """
        refusals = self._pool.drop_queued()
        if not refusals:
            return
        log.warning("listener %s closing: answering 503 to %d queued requests or connections", self.path,
                    len(refusals))

        def refuse_all() -> None:
            for done, refuse in enumerate(refusals):
                if time.monotonic() >= deadline:
                    log.warning("listener %s: close deadline passed; %d queued items left unanswered",
                                self.path, len(refusals) - done)
                    return
                try:
                    refuse()
                except Exception:  # noqa: BLE001 - one failed refusal must not stop the others
                    log.exception("listener %s could not refuse queued work", self.path)

        thread = threading.Thread(target=refuse_all, name=f"hybridconn-refuse-{self.name}", daemon=True)
        thread.start()
        thread.join(max(0.0, deadline - time.monotonic()))

    def close(self, timeout: float = 10.0) -> None:
        """Stop: answer new work 503, let running handlers finish (up to ``timeout``), close the
        control channel with 1000 and every socket, stop all threads. Idempotent; callable from a
        handler or callback; returns within ``timeout`` even if the network hangs."""
        start = time.monotonic()
        deadline = start + timeout
        with self._lock:
            if self._state == "closed":
                return
            if self._state == "closing":
                first = False
            else:
                first, self._state, was_online = True, "closing", self._online.is_set()
                self._stopping.set()
        if not first:
            ours = self._pool.in_worker() or threading.current_thread().name.startswith("hybridconn-")
            if not ours:
                self._closed.wait(timeout)
            return
        self._pool.wait_idle(start + timeout * 0.6, kinds=("http",))
        self._refuse_queued(start + timeout * 0.8)  # the rest is for closing sockets
        self._handshakes.abort_all()  # a reconnect, accept or rendezvous handshake would hold a thread
        with self._lock:
            channel, self._channel = self._channel, None
        if channel is not None:
            channel.conn.close(1000, "listener closing", timeout=max(0.1, min(2.0, deadline - time.monotonic())))
        self._keepalive.stop(max(0.0, min(1.0, deadline - time.monotonic())))
        self._acceptor.close()
        self._rendezvous.close_all(max(0.1, (deadline - time.monotonic()) / 2))
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            self._wait_aborting(lambda until: _joined(reader, until), deadline)
        self._wait_aborting(self._rendezvous.join, deadline)
        self._wait_aborting(self._pool.wait_idle, deadline)
        self._pool.close(deadline)
        self._overflow.close(deadline)
        with self._lock:
            self._state = "closed"
            self._online.clear()
        self._closed.set()
        self._settled.set()
        log.info("listener %s closed", self.path)
        if was_online and self._fatal is None:
            self._report_offline(None)


def _joined(thread: threading.Thread, until: float) -> bool:
    thread.join(max(0.0, until - time.monotonic()))
    return not thread.is_alive()
