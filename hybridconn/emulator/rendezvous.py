"""HTTP rendezvous sockets: a listener's WebSocket bound to one sender HTTP connection.

A listener opens one to the ``address`` of a request (``sb-hc-action=request``),
either because the request came address-only (too large or chunked) or to send
a response too large for the control channel. From then on the socket carries
every request of that sender connection and their responses; when the listener
drops it, the sender's connection is dropped too, and when the sender leaves,
the emulator closes it.

Responses are read with a :class:`~hybridconn.protocol.StreamingFrameAssembler`:
the head goes to the sender's thread at once and the body follows piece by
piece, never held whole.
"""

from __future__ import annotations

import logging
from typing import Optional

from wsproto.events import BytesMessage, TextMessage

from ..protocol import (
    BodyChunk,
    BodyEnd,
    ControlMessage,
    MessageHead,
    MessageReceived,
    ProtocolViolation,
    Response,
    StreamEvent,
    StreamingFrameAssembler,
    ViolationCause,
    listener_may_send,
)
from .context import EmulatorContext
from .control import invalid_status
from .exchange import RESPONSE_END, Linked, PendingRequest, RendezvousLink, ResponseData, ResponseStarted
from .http_conn import Incoming
from .keys import secret_matches, split_keyed_id
from .status import Refusal, describe
from .ws import ChannelEvent, CloseAnswered, ConnectionLost, PeerClosed

__all__ = ["serve_rendezvous", "ResponseReader"]

log: logging.Logger = logging.getLogger(__name__)


def serve_rendezvous(incoming: Incoming) -> Optional[Refusal]:
    """``sb-hc-action=request``: the listener connects to a request's rendezvous address."""
    ctx = incoming.ctx
    keyed = split_keyed_id(incoming.target.param("sb-hc-id"))
    pending = ctx.registry.find_request(keyed[0]) if keyed else None
    if keyed is None or pending is None or not pending.secret or not secret_matches(pending.secret, keyed[1]):
        if pending is not None:
            log.warning("request %s: a rendezvous with a wrong key was refused", pending.id)
        return incoming.refusal(403, "The rendezvous address is not valid or has expired")
    if pending.answered or pending.linked or pending.done.is_set():
        return incoming.refusal(403, "The rendezvous address is not valid or has expired")
    existing = pending.sender.link
    if existing is not None and existing.alive:
        return incoming.refusal(403, "The sender connection already has a rendezvous socket")
    pending.linked = True
    ws = incoming.conn.accept_websocket(incoming, None, name=f"rendezvous {pending.id}")
    ws.idle_timeout = ctx.fidelity.idle_timeout
    link = RendezvousLink(ws, pending.sender, pending.address)
    link.current = pending
    if pending.sender.attach_link(link):
        log.info("request %s: the listener opened a rendezvous socket", pending.id)
        pending.put(Linked(link), ctx.stop)
    else:
        log.info("request %s: the sender's connection ended before its rendezvous opened; closing it", pending.id)
        link.sender_gone()
    ResponseReader(ctx, link).run()
    return None


class ResponseReader:
    """Reads a rendezvous socket's responses (on the thread that accepted it) and hands them over."""

    def __init__(self, ctx: EmulatorContext, link: RendezvousLink) -> None:
        self.ctx = ctx
        self.link = link
        self.assembler: StreamingFrameAssembler = StreamingFrameAssembler()
        self.streaming: Optional[PendingRequest] = None  # whose response body is arriving

    def run(self) -> None:
        while True:
            events = self.link.ws.read_events(None)
            if events and isinstance(events[-1], PeerClosed) and any(
                    isinstance(e, (TextMessage, BytesMessage)) for e in events):
                # A response and the listener's close in one read: stop the sender's connection
                # first, so the response goes out with "Connection: close" and the sender does not
                # send its next request on a connection that is about to close.
                self.link.sender.drop_after_response()
            for event in events:
                if isinstance(event, TextMessage):
                    outcomes = self.assembler.receive_text(event.data, event.message_finished)
                elif isinstance(event, BytesMessage):
                    outcomes = self.assembler.receive_binary(event.data, event.message_finished)
                else:
                    self._on_closed(event)
                    return
                for outcome in outcomes:
                    self._on_outcome(outcome)

    def _on_outcome(self, outcome: StreamEvent) -> None:
        if isinstance(outcome, BodyChunk):
            if self.streaming is not None and not self.streaming.put(ResponseData(outcome.data), self.ctx.stop):
                self.streaming = None  # the sender stopped taking it: the rest is dropped
        elif isinstance(outcome, BodyEnd):
            if self.streaming is not None:
                self.streaming.put(RESPONSE_END, self.ctx.stop)
            self.streaming = None
        elif isinstance(outcome, (MessageHead, MessageReceived)):
            self._on_head(outcome.message, has_body=isinstance(outcome, MessageHead))
        elif isinstance(outcome, ProtocolViolation):
            self._on_violation(outcome)

    def _on_head(self, message: ControlMessage, has_body: bool) -> None:
        if not isinstance(message, Response):
            log.warning("rendezvous: unexpected %s message from the listener; ignored", type(message).__name__)
            return
        pending = self.link.current
        if pending is None or pending.id != message.request_id:
            pending = self.ctx.registry.find_request(message.request_id)
        if pending is None or pending.answered:
            log.info("rendezvous: response to unknown or finished request %s ignored", message.request_id)
            return
        pending.answered = True
        if not listener_may_send(message.status_code):
            pending.put_now(invalid_status(self.ctx, message))
            return
        pending.put(ResponseStarted(message), self.ctx.stop)
        if has_body:
            self.streaming = pending
        else:
            pending.put(RESPONSE_END, self.ctx.stop)

    def _on_violation(self, violation: ProtocolViolation) -> None:
        if violation.cause is ViolationCause.BODY_INTERRUPTED:
            if self.streaming is not None:
                self.streaming.abort("a text frame arrived inside a response body")
            self.streaming = None
        elif violation.cause is ViolationCause.STRAY_BODY:
            log.warning("rendezvous for request %s: a binary frame arrived without a response", self._current_id())
        else:
            pending = self.link.current
            if pending is not None and not pending.answered:
                log.warning("request %s failed: the listener sent an invalid response: %s", pending.id, violation.error)
                text = f"The listener sent an invalid response: {violation.error}"
                pending.fail(Refusal(500, describe(text, self.ctx.authority)))
            else:
                log.warning("rendezvous: invalid message from the listener: %s", violation.error)

    def _on_closed(self, event: ChannelEvent) -> None:
        link = self.link
        link.alive = False
        if isinstance(event, CloseAnswered):
            return  # we closed it: the sender is gone
        if isinstance(event, PeerClosed) and event.code == 1000:
            for outcome in self.assembler.finish():  # a body may end with a normal close
                self._on_outcome(outcome)
        elif self.streaming is not None:
            # Any other close (1011: the listener's body source failed) or a lost socket before the
            # body's last frame: the sender must see a broken response, never a short complete one.
            self.streaming.abort("the listener's rendezvous connection was lost mid-response")
            self.streaming = None
        current = link.current
        if current is not None and not current.answered:
            current.abort("the listener dropped the rendezvous connection")
        why = event.reason if isinstance(event, ConnectionLost) else f"closed {getattr(event, 'code', None)}"
        log.info("rendezvous socket of a sender connection ended (%s); dropping the sender's connection", why)
        link.sender.drop_after_response()

    def _current_id(self) -> str:
        current = self.link.current
        return current.id if current is not None else "-"
