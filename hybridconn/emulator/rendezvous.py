"""HTTP rendezvous sockets: a listener's WebSocket bound to one sender HTTP connection.

A listener opens one to the ``address`` of a request (``sb-hc-action=request``),
either because the request came address-only (too large or chunked) or to send
a response too large for the control channel. From then on the socket carries
every request of that sender connection and their responses; when the listener
drops it, the sender's connection is dropped too, and when the sender leaves,
the emulator closes it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Dict, List, Optional

import h11
from wsproto.events import BytesMessage, TextMessage

from ..exceptions import ProtocolError
from ..protocol import Request, Response, parse_message, serialize_message
from .context import EmulatorContext, Target
from .control import close_reason
from .registry import PendingRequest
from .status import Refusal, describe
from .ws import CloseAnswered, ConnectionLost, PeerClosed, WsChannel

__all__ = ["RendezvousLink", "serve_rendezvous"]

log = logging.getLogger(__name__)


class RendezvousLink:
    """The rendezvous socket of one sender connection; read by the listener-side thread."""

    def __init__(self, ctx: EmulatorContext, ws: WsChannel, sender: Any, address: str) -> None:
        self.ctx = ctx
        self.ws = ws
        self.address = address
        self.sender = sender
        self.current: Optional[PendingRequest] = None
        self.alive = True
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ sender side (its connection thread)

    def send_request(self, pending: PendingRequest, request: Request, body: Optional[bytes]) -> bool:
        """A request with its whole body (or none)."""
        self.current = pending
        return self.ws.send_unit(serialize_message(request), body if request.has_body else None)

    def start_streamed_request(self, pending: PendingRequest, request: Request) -> bool:
        """The request JSON; body fragments follow with :meth:`send_body`."""
        self.current = pending
        return self.ws.send_message(serialize_message(request))

    def send_body(self, chunk: bytes, fin: bool) -> bool:
        return self.ws.send_message(chunk, fin)

    def sender_gone(self) -> None:
        """The sender's HTTP connection ended: close the rendezvous socket."""
        self.alive = False
        if self.ws.can_send:
            self.ws.send_close(1001, close_reason("The sender client shut down the connection"))

    # ------------------------------------------------------------------ listener side (this link's thread)

    def read_loop(self) -> None:
        text: List[str] = []
        in_body: Optional[PendingRequest] = None
        while True:
            for event in self.ws.read_events(None):
                if isinstance(event, TextMessage):
                    if in_body is not None:
                        self._abort(in_body, "a text frame arrived inside a response body")
                        in_body = None
                    text.append(event.data)
                    if event.message_finished:
                        in_body = self._on_head("".join(text))
                        text = []
                elif isinstance(event, BytesMessage):
                    if in_body is None:
                        if event.data:
                            log.warning("rendezvous for request %s: a binary frame arrived without a response", self._current_id())
                        continue
                    if event.data and not in_body.put(("data", bytes(event.data)), self.ctx.stop):
                        in_body = None
                        continue
                    if event.message_finished:
                        in_body.put(("end",), self.ctx.stop)
                        in_body = None
                else:
                    self._on_closed(event, in_body)
                    return

    def _on_head(self, text: str) -> Optional[PendingRequest]:
        pending = self.current
        try:
            message = parse_message(text)
        except ProtocolError as exc:
            if pending is not None and not pending.answered:
                pending.answered = True
                log.warning("request %s failed: the listener sent an invalid response: %s", pending.id, exc)
                pending.put_now(("fail", 500, describe(f"The listener sent an invalid response: {exc}", self.ctx.authority)))
            else:
                log.warning("rendezvous: invalid message from the listener: %s", exc)
            return None
        if not isinstance(message, Response):
            log.warning("rendezvous: unexpected %s message from the listener; ignored", type(message).__name__)
            return None
        if pending is None or pending.id != message.request_id:
            pending = self.ctx.registry.find_request(message.request_id)
        if pending is None or pending.answered:
            log.info("rendezvous: response to unknown or finished request %s ignored", message.request_id)
            return None
        pending.answered = True
        if message.status_code < 200:
            pending.put_now(("fail", 500, describe(f"The listener sent an invalid status code {message.status_code}", self.ctx.authority)))
            return None
        pending.put(("head", message), self.ctx.stop)
        if message.has_body:
            return pending
        pending.put(("end",), self.ctx.stop)
        return None

    def _on_closed(self, event: object, in_body: Optional[PendingRequest]) -> None:
        self.alive = False
        if isinstance(event, CloseAnswered):
            return  # we closed it: the sender is gone
        if in_body is not None:
            if isinstance(event, PeerClosed):
                in_body.put(("end",), self.ctx.stop)  # a body may end with the close frame
            else:
                self._abort(in_body, "the listener's rendezvous connection was lost mid-response")
        current = self.current
        if current is not None and not current.answered:
            self._abort(current, "the listener dropped the rendezvous connection")
        why = event.reason if isinstance(event, ConnectionLost) else f"closed {getattr(event, 'code', None)}"
        log.info("rendezvous socket of a sender connection ended (%s); dropping the sender's connection", why)
        self.sender.drop_after_response()

    def _abort(self, pending: PendingRequest, why: str) -> None:
        pending.answered = True
        pending.put_now(("abort", why))

    def _current_id(self) -> str:
        return self.current.id if self.current is not None else "-"


def serve_rendezvous(conn: Any, request: h11.Request, target: Target, headers: Dict[str, str]) -> None:
    """``sb-hc-action=request``: the listener connects to a request's rendezvous address."""
    ctx: EmulatorContext = conn.ctx
    key = target.param("sb-hc-id")
    pending = ctx.registry.find_request(key) if key else None
    if pending is None or pending.answered or pending.linked or pending.done.is_set():
        raise Refusal(403, describe("The rendezvous address is not valid or has expired", conn.tracker(target.path)))
    existing = getattr(pending.sender, "link", None)
    if existing is not None and existing.alive:
        raise Refusal(403, describe("The sender connection already has a rendezvous socket", conn.tracker(target.path)))
    pending.linked = True
    ws = conn.accept_websocket(request, headers, None, name=f"rendezvous {pending.id}")
    link = RendezvousLink(ctx, ws, pending.sender, pending.address)
    link.current = pending
    pending.sender.link = link
    log.info("request %s: the listener opened a rendezvous socket", pending.id)
    pending.put(("link", link), ctx.stop)
    link.read_loop()
