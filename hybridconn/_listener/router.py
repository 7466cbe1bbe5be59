"""Routing: what each message from the relay becomes.

The control channel's reader and the rendezvous readers hand every complete
message here. An ``accept`` becomes an accept task (or a 503 reject); a
request with its body becomes a handler task whose :class:`~.responder.Reply`
writes the one response (or a 503 at once); an address-only request starts a
rendezvous reader that fetches it. Admission decides what runs; this module
only decides where things go.
"""

from __future__ import annotations

import logging
from typing import Optional

from .._transport import Dialer
from ..connection import HybridConnection
from ..protocol import Accept, AssemblerEvent, MessageReceived, ProtocolViolation, Request
from ..relayed import RelayedRequest
from .accepting import Acceptor
from .admission import Admission, Refusal
from .handling import call_handler, error_response, relayed_request
from .hooks import Hooks
from .inflight import InFlight
from .rendezvous import RendezvousPool, RendezvousRequest, refuse_fetched
from .responder import Reply
from .stats import Counters

__all__ = ["Router"]

log = logging.getLogger(__name__)


class Router:
    """Sends each message to the part that serves it (the control channel's MessageSink,
    the rendezvous pool's RequestSink)."""

    def __init__(self, path: str, dialer: Dialer, hooks: Hooks, admission: Admission, acceptor: Acceptor,
                 rendezvous: RendezvousPool, counters: Counters, max_request_body: Optional[int],
                 inflight: InFlight) -> None:
        self.path = path
        self._dialer = dialer
        self._hooks = hooks
        self._admission = admission
        self._acceptor = acceptor
        self._rendezvous = rendezvous
        self._counters = counters
        self.max_request_body = max_request_body
        self._inflight = inflight

    # ------------------------------------------------------------------ from the control channel

    def control_message(self, event: AssemblerEvent, conn: HybridConnection) -> None:
        """One event read off the control channel ``conn``."""
        if isinstance(event, ProtocolViolation):
            log.warning("protocol violation on the control channel of %s: %s", self.path, event.error)
            if event.kind == "request" and event.request_id:
                self._inflight.reply(event.request_id, control=conn).send(error_response(400, "Bad Request"))
            return
        assert isinstance(event, MessageReceived)
        message = event.message
        if isinstance(message, Accept):
            self._accept(message)
        elif isinstance(message, Request) and message.is_address_only:
            self._admission.fetch(lambda: self._rendezvous.fetch(message.address),
                                  lambda refusal: self._refuse_fetch(message, refusal))
        elif isinstance(message, Request):
            body = event.body or b""
            request = relayed_request(message, body, self.path, False)
            reply = self._inflight.reply(message.id, control=conn, address=message.address, sockets=self._rendezvous,
                                         request=request)
            if self.max_request_body is not None and len(body) > self.max_request_body:
                reply.send(error_response(413, "Payload Too Large"))
                return
            self._submit(request, reply)
        else:
            log.warning("unexpected %s message on the control channel of %s", type(message).__name__, self.path)

    def _accept(self, message: Accept) -> None:
        acceptor = self._acceptor
        self._admission.accept(lambda reserved: acceptor.serve(message, reserved),
                               lambda refusal: acceptor.reject(message, refusal),
                               acceptor.queue if acceptor.pulls else None, multiplexed=acceptor.multiplexes)

    def _refuse_fetch(self, message: Request, refusal: Refusal) -> None:
        refuse_fetched(self._dialer, message.address, message.id, refusal.status, refusal.text)

    # ------------------------------------------------------------------ from rendezvous sockets

    def rendezvous_request(self, request: RendezvousRequest) -> None:
        """A request read off a rendezvous socket; its response goes back over that socket."""
        relayed = relayed_request(request.message, request.body, self.path, True, stream=request.stream)
        reply = self._inflight.reply(request.message.id, rendezvous=request.conn, on_done=request.done, request=relayed)
        self._submit(relayed, reply)

    def rendezvous_refusal(self, conn: HybridConnection, message: Request, status: int, text: str) -> None:
        """A broken request (400) or one whose body is too large (413) on a rendezvous socket."""
        self._inflight.reply(message.id, rendezvous=conn).send(error_response(status, text))

    # ------------------------------------------------------------------ running handlers

    def _submit(self, request: RelayedRequest, reply: Reply) -> None:
        self._admission.request(lambda: self._serve(request, reply),
                                lambda refusal: reply.send(error_response(refusal.status, refusal.text)),
                                what=f"{request.method} {request.target}")

    def _serve(self, request: RelayedRequest, reply: Reply) -> None:
        self._counters.bump("requests")
        reply.send(call_handler(self._hooks.on_request, request))
