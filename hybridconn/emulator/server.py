"""The :class:`RelayEmulator`: one TCP port, an accept thread, a thread per connection."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any, Iterable, List, Mapping, Optional, Tuple, Union

from ..protocol import ACCEPT_WINDOW, RESPONSE_DEADLINE
from .accept_loop import AcceptLoop
from .access import KeyRing, KeySpec
from .context import EmulatorContext
from .credential import DevCredential
from .entra import EntraVerifier
from .control import restart_channel
from .entities import Entity
from .fidelity import Fidelity, as_fidelity
from .frame_relay import WS_RELAYS, FrameRelay
from .http_conn import HttpConnection
from .limits import ClientCounter, ClientLimits
from .registry import Registry
from .roles import DEV_PRINCIPAL_ID, RoleAssignmentLike, RoleAssignments
from .routes import route
from .tls import TlsOption, TlsSetup, server_context
from .ws import shutdown_socket

__all__ = ["RelayEmulator"]

log: logging.Logger = logging.getLogger(__name__)

_ANY_HOST = {"", "0.0.0.0", "::"}


class RelayEmulator:
    """A local Azure Relay Hybrid Connections service, for development and tests.

    :param host: interface to bind (``127.0.0.1``).
    :param port: TCP port; 0 picks a free one (see :attr:`port` after :meth:`start`).
    :param hybrid_connections: names to create up front.
    :param keys: None for the default rule (:data:`DEFAULT_KEY_NAME` with every right), or
        ``{key_name: key}`` (every right) / ``{key_name: (key, {"Listen", "Send", "Manage"})}``.
    :param tls: None (plain ``ws``/``http``), ``"self-signed"`` (made with ``openssl``),
        ``(certfile, keyfile)`` or an :class:`ssl.SSLContext`.
    :param response_timeout: seconds a listener has to answer an HTTP request (504 after);
        the service's :data:`~hybridconn.protocol.RESPONSE_DEADLINE` by default.
    :param accept_timeout: seconds a listener has to accept a sender (the accept window);
        the service's :data:`~hybridconn.protocol.ACCEPT_WINDOW` by default.
    :param anonymous_senders: hybrid connections that do not require client authorization.
    :param role_assignments: who may use Microsoft Entra ID tokens, and for what:
        :class:`~.roles.RoleAssignment` values or ``(principal_id, role[, hybrid_connection])``
        tuples (role ``"Azure Relay Owner"``/``"Listener"``/``"Sender"``; no hybrid connection
        means the namespace). None: :data:`~.roles.DEV_PRINCIPAL_ID` owns the namespace.
        Tokens come from the development issuer (:class:`~.credential.DevCredential`).
    :param local_auth: False refuses SAS tokens, as a namespace with local authentication disabled.
    :param close_grace: seconds a request stays answerable over its rendezvous address after the
        listener it was sent to closed its control channel cleanly (1000) without answering; a
        draining listener answers such requests there. After it, or at once when a channel is
        lost, the sender gets 502.
    :param hostnames: other names clients address this emulator by (``"devbox"`` or
        ``"devbox:9350"``): a token's audience may name them. Tokens are checked against these,
        the connect address and (on loopback) ``127.0.0.1``/``localhost``/``[::1]`` only, never
        against the request's ``Host`` header. Bound to every interface, this machine's host
        names are added.
    :param limits: what one client (one address) may hold: connections at once, and deadlines
        for a request head and between request-body bytes (:class:`~.limits.ClientLimits`;
        default: half the descriptor limit, 30 s, 30 s).
    :param fidelity: which service behaviours to imitate where Azure's are unknown or slow to
        meet (ping handling, idle drop, periodic restarts...): a :class:`~.fidelity.Fidelity`
        or a profile name (``"default"``, ``"pessimistic"``); see :mod:`.fidelity`.
    :param ws_relay: how relayed WebSockets' frames are pumped: ``"threads"`` (the default: each
        side's connection thread reads its own socket) or ``"poll"`` (one thread waits on every
        relayed socket; for thousands of WebSockets at once, where thousands of runnable pump
        threads spend the cores fighting for the GIL, at the cost that a peer which stops
        reading stalls every relayed WebSocket for up to 30 s instead of only its own; see
        :mod:`.frame_relay`).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        hybrid_connections: Iterable[str] = ("hc1",),
        keys: Optional[Mapping[str, KeySpec]] = None,
        tls: TlsOption = None,
        response_timeout: float = RESPONSE_DEADLINE,
        accept_timeout: float = ACCEPT_WINDOW,
        anonymous_senders: Iterable[str] = (),
        role_assignments: Optional[Iterable[RoleAssignmentLike]] = None,
        local_auth: bool = True,
        close_grace: float = 5.0,
        limits: Optional[ClientLimits] = None,
        hostnames: Iterable[str] = (),
        fidelity: Union[None, str, Fidelity] = None,
        ws_relay: str = "threads",
    ) -> None:
        if ws_relay not in WS_RELAYS:
            raise ValueError(f"ws_relay must be one of {', '.join(map(repr, WS_RELAYS))}, not {ws_relay!r}")
        #: How relayed WebSockets' frames are pumped (``"threads"`` or ``"poll"``).
        self.ws_relay: str = ws_relay
        self.host = host
        #: The service behaviours imitated (read when the emulator starts).
        self.fidelity = as_fidelity(fidelity)
        self._requested_port = int(port)
        #: The Entra ID role assignments (live: ``assign()``/``revoke()`` apply to the next check).
        self.role_assignments: RoleAssignments = RoleAssignments(role_assignments)
        self.keyring: KeyRing = KeyRing(keys, entra=EntraVerifier(self.role_assignments), local_auth=local_auth)
        self.response_timeout: float = float(response_timeout)
        self.accept_timeout: float = float(accept_timeout)
        self.close_grace: float = float(close_grace)
        #: Per-client caps: connections at once, request-head and body-idle deadlines (``limits.py``).
        self.limits: ClientLimits = limits if limits is not None else ClientLimits()
        self._accept_loop: Optional[AcceptLoop] = None
        self.hostnames: Tuple[str, ...] = tuple(str(h).strip().lower() for h in hostnames if str(h).strip())
        self._registry = Registry()
        for name in hybrid_connections:
            self._registry.add_entity(name)
        for name in anonymous_senders:
            self._registry.add_entity(name, requires_client_authorization=False)
        self._tls_option = tls
        self._tls: Optional[TlsSetup] = None
        self._lock = threading.Lock()
        self._ctx: Optional[EmulatorContext] = None
        self._server: Optional[socket.socket] = None
        self._accept_thread: Optional[threading.Thread] = None
        self._port: Optional[int] = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> "RelayEmulator":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    @property
    def running(self) -> bool:
        """True while started and accepting connections (False once the listening socket failed)."""
        thread = self._accept_thread
        return self._ctx is not None and thread is not None and thread.is_alive()

    def start(self) -> "RelayEmulator":
        """Bind and start serving (no-op when already running). Returns self."""
        with self._lock:
            if self._ctx is not None:
                return self
            if self._tls is None:
                self._tls = server_context(self._tls_option)
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            server = socket.socket(family, socket.SOCK_STREAM)
            try:
                server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                server.bind((self.host, self._requested_port))
                server.listen(128)
            except OSError:
                server.close()
                raise
            server.settimeout(1.0)  # a backstop: stop() also shuts the socket down to wake accept()
            self._server = server
            self._port = server.getsockname()[1]
            self._requested_port = self._port  # a restart comes back on the same port
            self._ctx = EmulatorContext(
                registry=self._registry,
                keyring=self.keyring,
                secure=self._tls.context is not None,
                authority=f"{self._connect_host}:{self._port}",
                response_timeout=self.response_timeout,
                accept_timeout=self.accept_timeout,
                close_grace=self.close_grace,
                limits=self.limits,
                hostnames=self._token_hostnames(),
                clients=ClientCounter(self.limits.max_connections_per_client),
                uploads=ClientCounter(self.limits.max_uploads_per_client),
                fidelity=self.fidelity,
                frame_relay=FrameRelay() if self.ws_relay == "poll" else None,
            )
            self._accept_loop = self._new_accept_loop(self._ctx, server)
            self._accept_thread = threading.Thread(
                target=self._accept_loop.run, name=f"hybridconn-emulator-accept-{self._port}", daemon=True
            )
            self._accept_thread.start()
        log.info("relay emulator listening on %s (bound to %s; hybrid connections: %s)", self.namespace,
                 self.bound_address, ", ".join(self._registry.entity_names()) or "none")
        return self

    def stop(self, timeout: float = 5.0, drain: float = 0.0) -> None:
        """Stop serving and drop every connection; returns within about ``timeout + drain`` seconds. Idempotent.

        :param drain: seconds to wait first for HTTP requests in flight to be
            answered and their responses delivered (a script that serves one
            request and exits should not cut the response it just gave).
        """
        if drain > 0 and self._ctx is not None and not self._registry.wait_requests_done(drain):
            log.info("relay emulator stopping with HTTP requests still in flight after %.1f s", drain)
        with self._lock:
            ctx, server, thread = self._ctx, self._server, self._accept_thread
            self._ctx = self._server = self._accept_thread = None
        if ctx is None:
            return
        deadline = time.monotonic() + max(timeout, 0.1)
        ctx.stop.set()
        if server is not None:
            shutdown_socket(server)
        for channel in self._registry.all_channels():
            channel.released.set()
        self._registry.fail_everything("the emulator is stopping")
        for conn in ctx.tracked():
            conn.abort()
        ctx.close_watch.close(max(0.0, deadline - time.monotonic()))
        if ctx.frame_relay is not None:  # ends what the aborts above did not, and its thread
            ctx.frame_relay.close(max(0.0, deadline - time.monotonic()))
        threads: List[threading.Thread] = [thread] if thread is not None else []
        threads.extend(conn.thread for conn in ctx.tracked())
        for worker in threads:
            worker.join(max(0.0, deadline - time.monotonic()))
        if server is not None:
            server.close()
        self._registry.forget_everything()
        stragglers = [t.name for t in threads if t.is_alive()]
        if stragglers:
            log.warning("relay emulator stopped; threads still finishing: %s", ", ".join(stragglers))
        else:
            log.info("relay emulator stopped")

    def restart(self, timeout: float = 5.0) -> None:
        """Stop, then start again on the same port (listeners must reconnect)."""
        self.stop(timeout)
        self.start()

    def close(self) -> None:
        """Stop and remove a self-signed certificate made for this emulator."""
        self.stop()
        if self._tls is not None:
            self._tls.cleanup()
            self._tls = None

    def _new_accept_loop(self, ctx: EmulatorContext, server: socket.socket) -> AcceptLoop:
        tls = self._tls.context if self._tls is not None else None

        def serve(sock: socket.socket, peer: Tuple[str, int], number: int) -> None:
            HttpConnection(ctx, sock, peer, tls, number, route).start()

        return AcceptLoop(server, serve, ctx.clients, ctx.stop.is_set, ctx.stop.wait)

    def _token_hostnames(self) -> Tuple[str, ...]:
        """Names a token's audience may use besides the connect address (and loopback aliases)."""
        names = list(self.hostnames)
        if self.host in _ANY_HOST:  # reachable from other machines by this machine's names
            names.extend(n.lower() for n in {socket.gethostname(), socket.getfqdn()} if n)
        elif self.host not in ("127.0.0.1", "localhost", "::1"):
            names.append(self.host if ":" not in self.host else f"[{self.host}]")
        return tuple(dict.fromkeys(names))

    @property
    def refused_connections(self) -> int:
        """Connections refused since the last start because their client had its cap open already."""
        ctx = self._ctx
        return ctx.clients.refused if ctx is not None else 0

    # ------------------------------------------------------------------ addresses

    @property
    def _connect_host(self) -> str:
        if self.host in _ANY_HOST:
            return "127.0.0.1"
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def bound_address(self) -> str:
        """``host:port`` the listening socket is actually bound to (``0.0.0.0:9350``), or ``""`` when stopped."""
        server = self._server
        if server is None:
            return ""
        try:
            host, port = server.getsockname()[:2]
        except OSError:
            return ""
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def port(self) -> int:
        """The bound port (the requested one before the first start)."""
        return self._port if self._port is not None else self._requested_port

    @property
    def secure(self) -> bool:
        """True when it serves wss/https (``tls=``)."""
        return self._tls_option is not None

    @property
    def endpoint(self) -> str:
        """``sb://127.0.0.1:PORT/``, as in a connection string."""
        return f"sb://{self._connect_host}:{self.port}/"

    @property
    def namespace(self) -> str:
        """``ws://127.0.0.1:PORT`` (``wss://`` with TLS): the namespace argument for hybridconn."""
        return f"{'wss' if self.secure else 'ws'}://{self._connect_host}:{self.port}"

    @property
    def http_base(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` with TLS): where senders' HTTP requests go."""
        return f"{'https' if self.secure else 'http'}://{self._connect_host}:{self.port}"

    @property
    def certificate_path(self) -> Optional[str]:
        """With ``tls="self-signed"``, the PEM file clients should trust (after :meth:`start`)."""
        return self._tls.certificate_path if self._tls is not None else None

    def connection_string(self, entity_path: Optional[str] = None, key_name: Optional[str] = None, *,
                          entra: Optional[bool] = None) -> str:
        """A connection string for this emulator; creates ``entity_path`` if it does not exist.

        ``entra=True`` leaves the key out, for ``credential=`` (default: True when
        ``local_auth`` is off).
        """
        if entity_path is None:
            names = self._registry.entity_names()
            entity_path = names[0] if names else None
        if entity_path is not None:
            entity_path = entity_path.strip("/")
            if entity_path not in self._registry.entity_names():
                self.add_hybrid_connection(entity_path)
        parts = [f"Endpoint={self.endpoint}"]
        if not (entra if entra is not None else not self.keyring.local_auth):
            name, key = self.keyring.key(key_name)
            parts += [f"SharedAccessKeyName={name}", f"SharedAccessKey={key}"]
        if entity_path:
            parts.append(f"EntityPath={entity_path}")
        if not self.secure:
            parts.append("UseDevelopmentEmulator=true")
        return ";".join(parts)

    def credential(self, principal_id: str = DEV_PRINCIPAL_ID, **options: Any) -> DevCredential:
        """A :class:`~.credential.DevCredential` for ``principal_id`` (``options``: ``lifetime=``...)."""
        return DevCredential(principal_id, **options)

    # ------------------------------------------------------------------ hybrid connections and listeners

    def add_hybrid_connection(self, name: str, requires_client_authorization: bool = True) -> None:
        """Create (or reconfigure) a hybrid connection."""
        self._registry.add_entity(name, requires_client_authorization)

    @property
    def hybrid_connections(self) -> List[str]:
        """The names of the hybrid connections it has, in the order they were created."""
        return self._registry.entity_names()

    def _entity(self, name: str) -> Entity:
        return self._registry.get_entity(name)

    def listener_count(self, name: str) -> int:
        """Listeners online on ``name`` (a stalled, half-open channel no longer counts)."""
        return self._registry.active_count(self._entity(name))

    def listener_ids(self, name: str) -> List[str]:
        """Ids of the listeners online on ``name`` (their ``sb-hc-id``, or one the emulator made)."""
        return [c.listener_id for c in self._registry.channels(self._entity(name)) if not c.stalled.is_set()]

    def wait_for_listeners(self, name: str, count: int = 1, timeout: float = 10.0) -> bool:
        """Block until ``count`` listeners are online on ``name``; False on timeout."""
        return self._registry.wait_for_listeners(self._entity(name), count, timeout)

    # ------------------------------------------------------------------ faults

    def drop_control_channels(
        self, name: str, listener_id: Optional[str] = None, code: Optional[int] = None, reason: str = ""
    ) -> int:
        """Drop control channels of ``name`` (one listener's, or all). ``code`` None: abrupt TCP close;
        else a close frame with that code. Returns how many were dropped."""
        channels = self._registry.channels(self._entity(name), listener_id)
        for channel in channels:
            log.info(
                "fault: dropping listener %s on %s (%s)", channel.listener_id, name, "abrupt" if code is None else code
            )
            if code is None or channel.stalled.is_set():
                channel.released.set()
                channel.ws.abort()
            else:
                channel.ws.send_close(
                    code, reason or f"Dropped by the emulator (fault injection) TrackingId:{channel.listener_id}"
                )
            self._registry.remove_listener(channel)
        return len(channels)

    def refuse_listeners(self, name: str, seconds: float, status: int = 503) -> None:
        """For ``seconds``, answer new listen handshakes on ``name`` with ``status`` (503 or 500)."""
        entity = self._entity(name)
        entity.refuse_status = status
        entity.refuse_until = time.monotonic() + seconds
        log.info("fault: refusing listeners on %s with %d for %.1f s", name, status, seconds)

    def restart_control_channels(self, name: Optional[str] = None) -> int:
        """Close control channels (of ``name``, or of every hybrid connection) as the service does about
        every 24 h: 1011 with a ``NameRenewalFailed`` reason. Returns how many."""
        ctx = self._ctx
        if ctx is None:
            return 0
        channels = (self._registry.channels(self._entity(name)) if name is not None
                    else self._registry.all_channels())
        for channel in channels:
            restart_channel(ctx, channel)
        return len(channels)

    def stall_control_channels(self, name: str, listener_id: Optional[str] = None) -> int:
        """Make control channels silent half-open ones: nothing read or written, no pongs, socket kept open.
        Returns how many were stalled."""
        channels = self._registry.channels(self._entity(name), listener_id)
        for channel in channels:
            log.info("fault: stalling listener %s on %s", channel.listener_id, name)
            channel.ws.silence()
            channel.stalled.set()
        self._registry.notify_changed()
        return len(channels)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"RelayEmulator({self.namespace}, {state}, hybrid_connections={self.hybrid_connections})"
