"""A tiny listener for the sender's tests, written straight on the protocol.

It opens the control channel with websocket-client (through
``hybridconn._transport.open_websocket``), reads control messages with
``protocol.FrameAssembler``, accepts or rejects WebSockets and answers HTTP
requests, small ones on the control channel and large ones (or address-only
requests) over the rendezvous address. It is deliberately independent of
``hybridconn.listener`` so the sender is tested against the protocol, not
against our own listener.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple, Union

from hybridconn import addresses
from hybridconn._transport import open_websocket
from hybridconn.auth import AUTH_HEADER, SharedAccessKeyTokenProvider
from hybridconn.connection import HybridConnection
from hybridconn.exceptions import ConnectionClosed, HybridConnectionError, RelayTimeoutError
from hybridconn.protocol import (
    CONTROL_CHANNEL_BODY_LIMIT,
    Accept,
    FrameAssembler,
    MessageReceived,
    Request,
    Response,
    serialize_message,
)

from tests.support.endpoints import echo_connection

Reply = Tuple[int, Dict[str, str], bytes]
AcceptDecision = Union[bool, Tuple[int, str]]


@dataclass
class Seen:
    """What the listener received, for assertions."""

    accepts: List[Accept] = field(default_factory=list)
    requests: List[Tuple[Request, bytes]] = field(default_factory=list)
    connections: "queue.Queue[HybridConnection]" = field(default_factory=queue.Queue)


def echo_reply(request: Request, body: bytes) -> Reply:
    """Echo the body and tell what arrived, in headers."""
    headers = {
        "Content-Type": "application/octet-stream",
        "X-Method": request.method or "",
        "X-Target": request.request_target or "",
        "X-Body-Length": str(len(body)),
    }
    return 200, headers, b"" if request.method == "HEAD" else body


class TinyListener:
    """``with TinyListener(namespace, "hc1", key_name, key) as listener: ...``."""

    def __init__(
        self,
        namespace: str,
        path: str,
        key_name: str,
        key: str,
        *,
        verify: Union[bool, str] = True,
        on_request: Callable[[Request, bytes], Reply] = echo_reply,
        on_connection: Optional[Callable[[HybridConnection], None]] = echo_connection,
        on_accept: Callable[[Accept], AcceptDecision] = lambda accept: True,
        pick_subprotocol: bool = True,
    ) -> None:
        self.namespace = namespace
        self.path = path
        self.verify = verify
        self.on_request = on_request
        self.on_connection = on_connection
        self.on_accept = on_accept
        self.pick_subprotocol = pick_subprotocol
        self.seen = Seen()
        provider = SharedAccessKeyTokenProvider(key_name, key)
        token, _ = provider.get_token(addresses.token_audience(namespace, path))
        ws = open_websocket(
            addresses.listen_url(namespace, path),
            headers={AUTH_HEADER: token},
            timeout=10,
            verify=verify,
            what="listen",
        )
        self.control = HybridConnection(ws)
        self._threads: List[threading.Thread] = []
        self._conns: List[HybridConnection] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read_control, name=f"test-listener-{path}")
        self._reader.start()

    def __enter__(self) -> "TinyListener":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.control.close(timeout=5)
        self._reader.join(10)
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            conn.close(timeout=2)
        for thread in list(self._threads):
            thread.join(10)

    # ------------------------------------------------------------------ control channel

    def _read_control(self) -> None:
        feed = _Feeder()
        try:
            while True:
                for event in feed(*self.control.recv_frame()):
                    if isinstance(event, MessageReceived):
                        self._spawn(self._dispatch, event.message, event.body)
        except (ConnectionClosed, RelayTimeoutError):
            return

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name="test-listener-work")
        self._threads.append(thread)
        thread.start()

    def _dispatch(self, message: object, body: Optional[bytes]) -> None:
        try:
            if isinstance(message, Accept):
                self._accept(message)
            elif isinstance(message, Request):
                if message.is_address_only:
                    self._rendezvous_request(message)
                else:
                    self._answer(message, body or b"", on_control_channel=True)
        except HybridConnectionError:
            pass  # the listener is closing, or the relay gave up on this request

    # ------------------------------------------------------------------ WebSockets

    def _accept(self, accept: Accept) -> None:
        self.seen.accepts.append(accept)
        decision = self.on_accept(accept)
        if decision is True:
            headers = {name.lower(): value for name, value in accept.connect_headers.items()}
            protocol = headers.get("sec-websocket-protocol") if self.pick_subprotocol else None
            offered = [protocol.split(",")[0].strip()] if protocol else None
            ws = open_websocket(accept.address, subprotocols=offered, timeout=10, verify=self.verify, what="accept")
            conn = HybridConnection(ws, id=accept.id, headers=dict(accept.connect_headers))
            self._track(conn)
            self.seen.connections.put(conn)
            if self.on_connection is not None:
                try:
                    self.on_connection(conn)
                except ConnectionClosed:
                    pass
                finally:
                    conn.close(timeout=5)
            return
        status, description = decision if isinstance(decision, tuple) else (400, "Rejected")
        try:
            ws = open_websocket(
                addresses.reject_url(accept.address, status, description), timeout=10, verify=self.verify, what="reject"
            )
        except HybridConnectionError:
            return  # the relay answers a reject with a refusal (410)
        HybridConnection(ws).abort()

    def _track(self, conn: HybridConnection) -> None:
        with self._lock:
            self._conns.append(conn)

    # ------------------------------------------------------------------ HTTP

    def _rendezvous_request(self, request: Request) -> None:
        conn = self._open_rendezvous(request.address)
        feed = _Feeder()
        try:
            while True:
                for event in feed(*conn.recv_frame(timeout=30)):
                    if isinstance(event, MessageReceived) and isinstance(event.message, Request):
                        self._answer(event.message, event.body or b"", on_control_channel=False, rendezvous=conn)
                        return
        except ConnectionClosed:
            return
        finally:
            conn.close(timeout=5)

    def _open_rendezvous(self, address: str) -> HybridConnection:
        ws = open_websocket(
            addresses.rendezvous_request_url(address), timeout=10, verify=self.verify, what="rendezvous"
        )
        conn = HybridConnection(ws)
        self._track(conn)
        return conn

    def _answer(
        self, request: Request, body: bytes, on_control_channel: bool, rendezvous: Optional[HybridConnection] = None
    ) -> None:
        self.seen.requests.append((request, body))
        status, headers, reply = self.on_request(request, body)
        response = serialize_message(
            Response(request_id=request.id, status_code=status, response_headers=headers, has_body=bool(reply))
        )
        chunks = [reply[i : i + 65536] for i in range(0, len(reply), 65536)] if reply else None
        if on_control_channel and len(reply) <= CONTROL_CHANNEL_BODY_LIMIT:
            self.control.send_unit(response, reply if reply else None)
            return
        if rendezvous is not None:
            rendezvous.send_unit(response, chunks)
            return
        conn = self._open_rendezvous(request.address)
        try:
            conn.send_unit(response, chunks)
        finally:
            conn.close(timeout=5)


class _Feeder:
    """Frames (continuations included) into a FrameAssembler."""

    def __init__(self) -> None:
        self.assembler = FrameAssembler()
        self.opcode = 1

    def __call__(self, opcode: int, payload: bytes, fin: bool) -> list:
        if opcode in (1, 2):
            self.opcode = opcode
        if self.opcode == 1:
            return self.assembler.receive_text(payload.decode("utf-8"), bool(fin))
        return self.assembler.receive_binary(payload, bool(fin))


__all__ = ["TinyListener", "Seen", "echo_reply"]
