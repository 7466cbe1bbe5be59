"""HybridConnectionListener: the listener role, composed of the small parts in :mod:`hybridconn._listener`
(control channel, router, admission, work pool, replies, rendezvous pool, in-flight registry, drainer); this
module owns the lifecycle (``open()``, ``close()``, ``drain()``, ``state``, the ``on_*`` hooks). See
docs/architecture.rst for the whole picture."""

from __future__ import annotations

import logging
import threading
from typing import Callable, Dict, Optional, Sequence, Union

from ._deadline import Deadline
from ._endpoint import RelayEndpoint
from ._listener.accepting import Acceptor, ConnectionRequest
from ._listener.admission import Admission
from ._listener.channel import ControlChannel, Link
from ._listener.draining import Drainer
from ._listener.hooks import Hook, Hooks
from ._listener.inflight import InFlight
from ._listener.multiplex import Multiplexer
from ._listener.pool import WorkPool
from ._listener.reconnect import Backoff
from ._listener.rendezvous import RendezvousPool
from ._listener.router import Router
from ._listener.stats import Counters
from ._transport import Dialer, HandshakeSet, Verify, check_verify
from .addresses import Namespace, check_entity_path, token_audience
from .auth import TokenProvider, TokenProviderLike, as_token_provider
from .connection import MAX_MESSAGE_SIZE, HybridConnection
from .exceptions import HybridConnectionError

__all__ = ["HybridConnectionListener", "ConnectionRequest"]

log: logging.Logger = logging.getLogger(__name__)

#: Default ``max_request_body``: larger request bodies are dropped and answered 413.
DEFAULT_MAX_REQUEST_BODY = 64 * 1024 * 1024


class HybridConnectionListener(RelayEndpoint):
    """Listens on a hybrid connection and serves its HTTP requests and WebSocket connections.

    :param namespace: host name or base URL (``ws://127.0.0.1:9350`` for the emulator).
    :param path: the hybrid connection's name.
    :param token_provider: a TokenProvider, a callable ``audience -> (token, expires_on)``, or None.
    :param max_workers: handler threads.
    :param max_pending: work queued beyond them before requests are answered 503 and sockets
        rejected 503 (also bounds the accept queue).
    :param max_rendezvous: request rendezvous sockets kept open at once.
    :param ping_interval: seconds between keep-alives (control channel, accepted sockets); keep it under ~4 min.
    :param ping_timeout: how long a keep-alive may go unacknowledged (TCP_USER_TIMEOUT, or a Pong
        in ``"ping"`` mode) before the channel counts as dead and is replaced.
    :param keepalive: ``"pong"`` (unsolicited Pongs, as Microsoft's clients do) or ``"ping"``.
    :param retry_on_open: keep trying in ``open()`` instead of raising on 401/403/unreachable.
    :param backoff: reconnect delays in seconds (the last repeats).
    :param jitter: each delay varies by up to this fraction either way.
    :param subprotocols: WebSocket subprotocols this application speaks, in no order. A sender
        offering only others is rejected with 400; with none configured, every socket is accepted
        without a subprotocol (whatever the sender offered).
    :param verify: TLS verification: True (system trust), False, or a CA bundle path.
    :param proxy: an ``http://[user:pass@]host:port`` proxy for every handshake.
    :param token_in_query: send the token as ``sb-hc-token`` instead of the ``ServiceBusAuthorization`` header.
    :param io_timeout: socket timeout for a stalled frame read or send.
    :param connect_timeout: seconds for each handshake (control channel, accept, rendezvous).
    :param rendezvous_idle_timeout: seconds a kept request rendezvous socket may sit idle (no frames,
        no response pending) before it is closed, so idle keep-alive senders do not hold
        ``max_rendezvous`` forever; None keeps them until the sender closes.
    :param max_request_body: largest request body in bytes (default 64 MiB); a larger one is read
        and dropped as it arrives and answered 413. None: no limit (bodies are held in memory).
        Not applied to streamed bodies (``stream_request_bodies``), which are never held.
    :param stream_request_bodies: hand a request that arrives by rendezvous (bodies over 64 kB,
        chunked uploads) to ``on_request`` as soon as its head arrives, its body readable from
        ``request.stream`` as it comes in (``request.body`` is then empty): a body of any size
        passes in bounded memory, the sender slowed while the handler reads. A read waits up to
        ``io_timeout`` for the next piece. Default False: the whole body is read first, into
        ``request.body`` (``request.stream`` then reads over it).
    :param max_message_size: longest message an accepted WebSocket takes (default 16 MiB,
        :data:`~hybridconn.connection.MAX_MESSAGE_SIZE`); a longer one closes it with 1009.
        None: no limit.
    :param name: names the listener's threads and log lines (default: ``path``).
    """

    on_request: Hook = Hook("``@listener.on_request``: ``handler(request: RelayedRequest) -> RelayedResponse``, "
                      "run in a pool thread for each HTTP request (501 without one).")
    on_connection: Hook = Hook("``@listener.on_connection``: ``handler(conn: HybridConnection) -> None``, run in a "
                         "pool thread for each accepted WebSocket until it returns (then the socket is closed).")
    on_message = Hook("``@listener.on_message``: ``handler(conn: HybridConnection, message: str | bytes) -> None``: "
                      "accepted WebSockets are multiplexed (one reader thread for all of them) and each message "
                      "runs in a pool thread, a connection's messages one at a time and in order; "
                      "``conn.send`` works from any thread. Wins over ``on_connection``.")
    on_open: Hook = Hook("``@listener.on_open``: ``callback(conn: HybridConnection) -> None``, a multiplexed WebSocket "
                   "was accepted; runs in a pool thread before its first ``on_message``.")
    on_close = Hook("``@listener.on_close``: ``callback(conn: HybridConnection) -> None``, a multiplexed WebSocket "
                    "closed (``conn.close_code``); runs after its last ``on_message``.")
    on_accept: Hook = Hook("``@listener.on_accept``: ``gate(request: ConnectionRequest) -> True | False | status | "
                     "(status, description)``, decides before a WebSocket is accepted.")
    on_online: Hook = Hook("``@listener.on_online``: ``callback() -> None``, the control channel is up (also after "
                     "each reconnect).")
    on_offline: Hook = Hook("``@listener.on_offline``: ``callback(error: Optional[BaseException]) -> None``, the "
                      "control channel went down (None: closed by us).")
    on_connecting: Hook = Hook("``@listener.on_connecting``: ``callback() -> None``, a connect attempt starts.")
    on_response: Hook = Hook("``@listener.on_response``: ``callback(record: ResponseRecord) -> None``, an HTTP "
                       "response went out (or failed to), run in the thread that wrote it (access logs, metrics).")

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
        keepalive: str = "pong",
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
        stream_request_bodies: bool = False,
        name: Optional[str] = None,
        max_message_size: Optional[int] = MAX_MESSAGE_SIZE,
    ) -> None:
        self.namespace: Namespace = Namespace.parse(namespace)
        self.path: str = check_entity_path(path)
        self.name: str = name or self.path
        self.token_provider: Optional[TokenProvider] = as_token_provider(token_provider)
        self.retry_on_open = retry_on_open
        self.max_request_body = max_request_body
        self.stream_request_bodies: bool = bool(stream_request_bodies)
        self.dialer = Dialer(verify=check_verify(verify), proxy=proxy or None, connect_timeout=connect_timeout,
                             io_timeout=io_timeout, token_in_query=token_in_query, handshakes=HandshakeSet())
        #: The callbacks; ``@listener.on_request`` and friends fill it.
        self.hooks: Hooks = Hooks()
        self.last_error: Optional[BaseException] = None
        self._lock = threading.RLock()
        self._state = "new"
        self._online = threading.Event()
        self._closed = threading.Event()
        self._settled = threading.Event()  # online for the first time, or closed: open() may return
        self._fatal: Optional[HybridConnectionError] = None
        self._offline_reported = True  # on_offline fires once per online -> offline transition
        self._counters = Counters("requests", "busy", "accepted", "rejected", "rendezvous_opened")
        self._pool = WorkPool(self.name, max_workers, max_pending)
        self._admission = Admission(self.name, self._pool, self._counters)
        self._inflight = InFlight(self.name, self.hooks)
        self._rendezvous = RendezvousPool(self.name, self.dialer, max_rendezvous, idle_timeout=rendezvous_idle_timeout,
                                          max_body=max_request_body, counters=self._counters,
                                          stream_bodies=self.stream_request_bodies, body_timeout=io_timeout)
        self._multiplexer = Multiplexer(self.name, self._pool, self.hooks, self._rendezvous, runners=max_workers)
        self._acceptor = Acceptor(self.path, self.dialer, self.hooks, self._rendezvous, self._admission,
                                  queue_size=max_pending, subprotocols=subprotocols or (), counters=self._counters,
                                  max_message_size=max_message_size, multiplexer=self._multiplexer,
                                  keepalive_interval=ping_interval, name=self.name)
        router = Router(self.path, self.dialer, self.hooks, self._admission, self._acceptor, self._rendezvous,
                        self._counters, max_request_body, self._inflight)
        self._rendezvous.sink = router
        self._control = ControlChannel(self.name, self.namespace, self.path, self.token_provider,
                                       token_audience(self.namespace, self.path), self.dialer, Backoff(backoff, jitter),
                                       ping_interval=ping_interval, ping_timeout=ping_timeout, sink=router,
                                       observer=self, keepalive=keepalive)
        #: Set (before open()): every control channel's ``sb-hc-id``, as senders' AllowedListeners name it.
        self.listener_id: Optional[str] = None
        self._drainer = Drainer(self.name, self._control, self._inflight, self._pool, self._admission, self._rendezvous)

    # ------------------------------------------------------------------ options, as given

    @property
    def io_timeout(self) -> float:
        """Seconds one socket read or write may take (from the dialer)."""
        return self.dialer.io_timeout

    @property
    def connect_timeout(self) -> float:
        """Seconds one connection attempt may take (from the dialer)."""
        return self.dialer.connect_timeout

    @property
    def backoff(self) -> Sequence[float]:
        """The reconnect delays in seconds; the last one repeats."""
        return self._control.backoff.schedule

    @property
    def jitter(self) -> float:
        """The fraction by which each reconnect delay varies either way."""
        return self._control.backoff.jitter

    # ------------------------------------------------------------------ state

    @property
    def is_online(self) -> bool:
        """True while the control channel is up and the relay routes to this listener."""
        return self._online.is_set()

    @property
    def state(self) -> str:
        """``new``, ``online``, ``offline`` (reconnecting), ``draining``, ``closing`` or ``closed``."""
        return self._state

    @property
    def stats(self) -> Dict[str, int]:
        """Counters: requests served, busy (503) answers, sockets accepted/rejected, control-channel
        connects; and now: work in flight (``running`` in handlers, ``queued`` behind them),
        requests not yet answered, open sockets."""
        counters = self._counters.snapshot()
        in_flight, running = self._pool.in_flight, self._pool.running
        return dict(counters, connects=self._control.connects, in_flight=in_flight, running=running,
                    queued=max(0, in_flight - running), unanswered=self._inflight.count,
                    sockets=self._rendezvous.sockets, renewals=self._control.keepalive.renewals,
                    multiplexed=self._multiplexer.connections)

    @property
    def _channel(self) -> Optional[Link]:
        """The control channel now up (tests reach its socket through this)."""
        return self._control.link

    @property
    def _stopping(self) -> threading.Event:
        """Set once close() has begun."""
        return self._admission.closing_event

    def __repr__(self) -> str:
        return (f"<HybridConnectionListener path={self.path!r} namespace={self.namespace.ws_base} state={self._state} "
                f"in_flight={self._pool.in_flight} sockets={self._rendezvous.sockets}>")

    def __enter__(self) -> "HybridConnectionListener":
        if self._state == "new":
            self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ open

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
        first: Optional[Link] = None
        if not self.retry_on_open:
            self.hooks.notify("on_connecting")
            try:
                first = self._control.connect(self.connect_timeout if timeout is None else timeout)
            except BaseException as exc:
                with self._lock:
                    self._state = "new"
                self.last_error = exc
                raise
        self._control.start(first)
        if first is None:
            if not self._settled.wait(timeout):
                log.warning("listener %s not online after %s s; still retrying (last error: %s)",
                            self.path, timeout, self.last_error)
            if self._fatal is not None:
                raise self._fatal

    # ------------------------------------------------------------------ the channel's life (ChannelObserver)

    def channel_connecting(self) -> None:
        """The control channel is dialling (called by it; runs ``on_connecting``)."""
        self.hooks.notify("on_connecting")

    def channel_online(self, link: Link) -> None:
        """The control channel is up (called by it; runs ``on_online``)."""
        with self._lock:
            if self._state in ("draining", "closing", "closed"):
                return
            self._state = "online"
            self._offline_reported = False
        self._online.set()
        self._settled.set()
        self.hooks.notify("on_online")

    def channel_offline(self, error: HybridConnectionError) -> None:
        """The control channel went down with ``error`` (called by it; runs ``on_offline``)."""
        with self._lock:
            self._online.clear()
            if self._state in ("draining", "closing", "closed"):
                return
            self._state = "offline"
        self.last_error = error
        self._report_offline(error)

    def channel_retrying(self, error: HybridConnectionError, attempt: int) -> None:
        """A reconnect attempt failed with ``error``; kept as ``last_error``."""
        self.last_error = error

    def channel_failed(self, error: HybridConnectionError) -> None:
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
        self.hooks.notify("on_offline", error)

    # ------------------------------------------------------------------ serving

    def accept_connection(self, timeout: Optional[float] = None) -> Optional[HybridConnection]:
        """The next accepted WebSocket (when no ``on_connection`` is set); None once closed.

        :raises RelayTimeoutError: none arrived within ``timeout`` seconds.
        """
        return self._acceptor.take(timeout)

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

    # ------------------------------------------------------------------ drain and close

    def drain(self, timeout: float = 30.0) -> bool:
        """Stop gracefully: leave the relay now, let the work in flight finish, then close.

        The control channel is closed first, so the relay routes new requests to the hybrid
        connection's other listeners at once; requests in flight are answered over their
        rendezvous addresses; HTTP handlers get most of ``timeout``, and those still running then
        are answered 503; then everything is closed as :meth:`close` does. Returns within
        ``timeout`` (plus a fraction of a second); True when every handler finished and
        everything stopped in time. On a listener that is already closing, waits as
        :meth:`close` does.
        """
        until = Deadline(timeout)
        with self._lock:
            draining = self._state in ("online", "offline")
            if draining:
                self._state = "draining"
        if not draining:
            return self.close(timeout)
        outcome = self._drainer.run(until)
        if outcome.cut_short:
            log.warning("listener %s: %d requests were still running when the drain time ran out; answered 503",
                        self.path, outcome.cut_short)
        return self.close(until.left(floor=0.1)) and outcome.finished

    def close(self, timeout: float = 10.0) -> bool:
        """Stop: answer new work 503, let running handlers finish (up to ``timeout``), close the
        control channel with 1000 and every socket, stop all threads.

        Idempotent; callable from a handler or callback; returns within ``timeout`` (plus a
        fraction of a second) even if the network hangs. Returns True when everything stopped
        in time; what did not is logged (a handler still running is left to finish on its own).
        """
        until = Deadline(timeout)
        was_online = False
        with self._lock:
            if self._state == "closed":
                return True
            first = self._state != "closing"
            if first:
                was_online, self._state = self._online.is_set(), "closing"
                self._admission.start_closing()
                self._control.stop()
        if not first:
            ours = self._pool.in_worker() or threading.current_thread().name.startswith("hybridconn-")
            if not ours:
                until.wait(self._closed)
            return self._closed.is_set()
        stopped = self._shut_down(until)
        with self._lock:
            self._state = "closed"
            self._online.clear()
        self._closed.set()
        self._settled.set()
        log.info("listener %s closed", self.path)
        if was_online and self._fatal is None:
            self._report_offline(None)
        return stopped

    def _shut_down(self, until: Deadline) -> bool:
        # Waiting on the peer (handlers, refusals, close handshakes) ends by 90 % of the timeout; joining
        # our own threads, once every socket is closed or aborted, may take a moment past it.
        handlers_until, refusals_until, peers_until = until.fraction(0.6), until.fraction(0.8), until.fraction(0.9)
        threads_until = until.extended(0.5)
        # Queued work never runs once closing: its 503s go out while the running handlers finish,
        # not in what is left after them (on a loaded machine that was too little, and they got 502).
        refusing = self._admission.refuse_queued(refusals_until, wait=False)
        self._pool.wait_idle(handlers_until, kinds=("http",))
        if refusing is not None:
            refusals_until.join(refusing)  # the rest is for closing sockets
        (self.dialer.handshakes or HandshakeSet()).abort_all()  # a handshake in progress would hold a thread
        self._control.close(peers_until)
        multiplexer_stopped = self._multiplexer.close(peers_until)  # no reads under the closes below
        self._acceptor.close(peers_until)
        self._rendezvous.close_all(peers_until)
        steps = {
            "control channel reader and timer": self._until_done(self._control.join, threads_until),
            "rendezvous readers": self._until_done(self._rendezvous.join, threads_until),
            "multiplexed reader": multiplexer_stopped or self._multiplexer.close(threads_until),
            "handlers": self._until_done(self._pool.wait_idle, threads_until),
            "handler pool": self._pool.close(threads_until),
            "overflow pool": self._admission.close(threads_until),
            "upgrade pool": self._inflight.close(threads_until),
        }
        late = [what for what, done in steps.items() if not done]
        if late:
            log.warning("listener %s: the close deadline passed with these still running: %s", self.path,
                        ", ".join(late))
        return not late

    def _until_done(self, done: Callable[[Deadline], bool], until: Deadline) -> bool:
        """Wait in slices for ``done`` until ``until``, ending handshakes between slices.

        websocket-client hands a handshake's socket over only once the TCP connection (and a
        proxy tunnel) is up, so a handshake that was just starting at the first abort is caught
        by a later one.
        """
        handshakes = self.dialer.handshakes
        while True:
            if handshakes is not None:
                handshakes.abort_all()
            if done(until.sooner(0.2)):
                return True
            if until.expired:
                return False
