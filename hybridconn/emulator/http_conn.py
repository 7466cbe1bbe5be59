"""One accepted TCP connection, served by one thread: TLS, HTTP/1.1 with h11, routing.

``/$hc/...`` upgrades go to the WebSocket endpoints (listen, connect, accept,
request); everything else is an HTTP request relayed to a listener. Bad HTTP
gets 400 (431 for a header section over 32 kB) and the connection is closed;
no failure here ever reaches another connection.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from typing import Callable, List, Optional, Tuple, Union

import h11
from wsproto.utilities import generate_accept_token

from .._redact import redact
from .._wait import recv_some
from ..protocol import HEADER_METADATA_LIMIT
from .context import EmulatorContext, headers_dict, parse_target
from .status import Refusal, describe, reason_phrase
from .ws import WsChannel, shutdown_socket

__all__ = ["HttpConnection"]

log = logging.getLogger(__name__)

TLS_HANDSHAKE_TIMEOUT = 10.0
#: Write stall allowed before a peer that stopped reading is dropped.
WRITE_TIMEOUT = 30.0
#: An idle keep-alive connection is closed after this long.
IDLE_TIMEOUT = 240.0

H11Event = Union[h11.Request, h11.Data, h11.EndOfMessage, h11.ConnectionClosed, type]


class ConnectionDone(Exception):
    """The peer went away or the connection was dropped."""


class HttpConnection:
    """Serves one client connection until it closes."""

    def __init__(self, ctx: EmulatorContext, sock: socket.socket, peer: Tuple[str, int], tls: Optional[ssl.SSLContext], number: int) -> None:
        self.ctx = ctx
        self.sock = sock
        self.peer = peer
        self.tls = tls
        self.number = number
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=HEADER_METADATA_LIMIT)
        self.link: Optional[object] = None  # http_relay.RendezvousLink persisting for this sender
        self.drop_requested = threading.Event()
        self.thread = threading.Thread(target=self.run, name=f"hybridconn-emulator-conn-{number}", daemon=True)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.ctx.track(self)
        self.thread.start()

    def abort(self) -> None:
        """Drop the connection now (from any thread)."""
        self.drop_requested.set()
        shutdown_socket(self.sock)

    def drop_after_response(self) -> None:
        """Stop reading requests; the response being written (if any) still completes."""
        self.drop_requested.set()
        shutdown_socket(self.sock, socket.SHUT_RD)

    def run(self) -> None:
        try:
            if self.tls is not None:
                self._tls_handshake()
            self.sock.settimeout(WRITE_TIMEOUT)
            self._serve()
        except ConnectionDone:
            pass
        except Exception:  # noqa: BLE001 - one broken connection must never disturb the others
            log.exception("emulator connection %s from %s failed", self.number, self.peer[0])
        finally:
            self._finish()

    def _tls_handshake(self) -> None:
        assert self.tls is not None
        self.sock.settimeout(TLS_HANDSHAKE_TIMEOUT)
        try:
            self.sock = self.tls.wrap_socket(self.sock, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            log.info("TLS handshake with %s failed: %s", self.peer[0], exc)
            raise ConnectionDone() from exc

    def _finish(self) -> None:
        link = self.link
        if link is not None:
            link.sender_gone()  # type: ignore[attr-defined]
        shutdown_socket(self.sock)
        try:
            self.sock.close()
        except OSError:
            pass
        self.ctx.untrack(self)

    # ------------------------------------------------------------------ h11 plumbing

    def recv_bytes(self, timeout: Optional[float]) -> Optional[bytes]:
        """Bytes, b"" at EOF, None on timeout."""
        return recv_some(self.sock, timeout, 65536)

    def next_event(self, timeout: Optional[float] = None) -> H11Event:
        """The next h11 event; raises ConnectionDone on timeout or a dead socket."""
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = self.recv_bytes(timeout)
            if data is None:
                raise ConnectionDone()
            self.h11.receive_data(data)

    def send(self, *events: object) -> None:
        wire = b"".join(self.h11.send(event) or b"" for event in events)  # type: ignore[arg-type]
        try:
            self.sock.sendall(wire)
        except (OSError, ValueError) as exc:
            raise ConnectionDone() from exc

    def send_raw(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except (OSError, ValueError) as exc:
            raise ConnectionDone() from exc

    def tracker(self, path: str) -> str:
        return f"{self.ctx.authority}:{path}" if path else self.ctx.authority

    def refuse(self, status: int, description: str, close: bool = True) -> None:
        """Answer with a service error (no Via header: it did not come from a listener)."""
        body = description.encode("utf-8")
        headers: List[Tuple[str, str]] = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
        if close:
            headers.append(("Connection", "close"))
        try:
            self.send(h11.Response(status_code=status, headers=headers, reason=reason_phrase(description)), h11.Data(data=body), h11.EndOfMessage())
        except h11.LocalProtocolError:
            raise ConnectionDone() from None

    # ------------------------------------------------------------------ serving

    def _serve(self) -> None:
        while not self.ctx.stop.is_set():
            try:
                event = self.next_event(IDLE_TIMEOUT)
            except h11.RemoteProtocolError as exc:
                self._bad_http(exc)
                return
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return
            if not isinstance(event, h11.Request):
                return
            try:
                keep_alive = self._route(event)
            except Refusal as refusal:
                self.refuse(refusal.status, refusal.description, close=True)
                return
            except h11.RemoteProtocolError as exc:
                self._bad_http(exc)
                return
            if not keep_alive or self.drop_requested.is_set():
                return
            if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
                self.h11.start_next_cycle()
            else:
                return

    def _bad_http(self, exc: h11.RemoteProtocolError) -> None:
        if self.drop_requested.is_set():
            # We shut the reading side ourselves (the listener's rendezvous died mid-request), so the
            # "incomplete body" is our doing: the sender's connection is dropped, never answered 400.
            log.debug("connection from %s dropped mid-request: %s", self.peer[0], redact(str(exc)))
            return
        status = exc.error_status_hint or 400
        # h11 quotes the offending line, which may be an authorization header.
        detail = redact(str(exc))
        text = "Request header section too large" if status == 431 else f"Bad request: {detail}"
        log.info("bad HTTP from %s: %s -> %d", self.peer[0], detail, status)
        if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            try:
                self.refuse(status, describe(text, self.ctx.authority), close=True)
            except ConnectionDone:
                pass

    def _route(self, request: h11.Request) -> bool:
        from . import control, http_relay, relay  # the endpoint modules import this one

        # h11 only bounds a header section that arrives in pieces; check a whole one here.
        size = len(request.target) + sum(len(name) + len(value) + 4 for name, value in request.headers.raw_items())
        if size > HEADER_METADATA_LIMIT:
            raise Refusal(431, describe("Request header section too large", self.ctx.authority))
        target = parse_target(request.target.decode("latin-1"))
        headers = headers_dict(request.headers.raw_items())
        if request.method == b"CONNECT":
            raise Refusal(405, describe("The CONNECT method is not supported", self.ctx.authority))
        if not target.hc:
            return http_relay.serve_http(self, request, target, headers)
        # WebSocket endpoints: read the (empty) request body up to the upgrade point.
        self.finish_request_body()
        # RFC 6455 4.2.1: a GET, HTTP/1.1, "Connection: Upgrade" and "Upgrade: websocket" - else no 101.
        connection = {token.strip() for token in headers.get("connection", "").lower().split(",")}
        if (
            "websocket" not in headers.get("upgrade", "").lower()
            or "upgrade" not in connection
            or request.method != b"GET"
            or request.http_version != b"1.1"
        ):
            raise Refusal(400, describe("This endpoint requires a WebSocket upgrade", self.tracker(target.path)))
        if headers.get("sec-websocket-version", "").strip() != "13" or not headers.get("sec-websocket-key"):
            raise Refusal(400, describe("Invalid WebSocket handshake: Sec-WebSocket-Version 13 and Sec-WebSocket-Key are required", self.tracker(target.path)))
        action = (target.param("sb-hc-action") or "").lower()
        handlers = {
            "listen": control.serve_listen,
            "connect": relay.serve_connect,
            "accept": relay.serve_accept,
            "request": http_relay.serve_rendezvous,
        }
        handler = handlers.get(action)
        if handler is None:
            raise Refusal(400, describe(f"Unrecognized sb-hc-action {action!r}", self.tracker(target.path)))
        handler(self, request, target, headers)
        return False

    def finish_request_body(self, limit: int = 1 << 20) -> bool:
        """Read and discard the rest of the request body; False if it was too long to wait for."""
        seen = 0
        while self.h11.their_state is h11.SEND_BODY:
            event = self.next_event(WRITE_TIMEOUT)
            if isinstance(event, h11.Data):
                seen += len(event.data)
                if seen > limit:
                    return False
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionDone()
        return True

    def accept_websocket(
        self,
        request: h11.Request,
        headers: dict,
        subprotocol: Optional[str],
        name: str,
        register: Optional[Callable[[WsChannel], None]] = None,
    ) -> WsChannel:
        """Send 101 (declining every extension) and wrap the socket.

        ``register`` runs before the 101 goes out, with the channel's send lock
        held: once the client sees its handshake complete, the emulator already
        routes to it, and nothing can be sent ahead of the 101. If it raises,
        the handshake is refused instead.
        """
        response_headers = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", generate_accept_token(headers["sec-websocket-key"].encode("latin-1"))),
        ]
        if subprotocol:
            response_headers.append(("Sec-WebSocket-Protocol", subprotocol))
        channel = WsChannel(self.sock, b"", name=name)
        with channel.send_lock:
            if register is not None:
                register(channel)
            self.send(h11.InformationalResponse(status_code=101, headers=response_headers))
            trailing, _closed = self.h11.trailing_data
            channel.feed(trailing)
        self.sock.settimeout(WRITE_TIMEOUT)
        return channel
