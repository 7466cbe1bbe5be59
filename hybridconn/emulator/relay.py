"""Relayed WebSockets: the sender's connect, the listener's accept or reject, the frame pump.

The sender's upgrade is held until a listener connects to the rendezvous
address of the ``accept`` message. Then each side's connection thread pumps
its own socket into the other: text stays text, binary stays binary, message
boundaries are kept, and a close started by either peer reaches the other
with its code and reason; the handshake completes only when the other peer
answers, and that answer is relayed back, so data sent after a close still
arrives (a half-close). A socket lost without a close drops the other side.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Dict, List, Optional, Union

from wsproto.events import BytesMessage, TextMessage

from ..addresses import rendezvous_address
from ..protocol import Accept, parse_subprotocols, serialize_message, standard_phrase
from .context import raw_headers
from .entities import Entity, ListenerChannel
from .gate import admit, forwarded_headers, optional_int, pick_for
from .http_conn import Incoming
from .keys import keyed_id, mint_secret, secret_matches, split_keyed_id
from .registry import PendingAccept
from .status import NO_LISTENERS, Refusal, close_reason
from .frame_relay import FrameRelay
from .ws import ChannelEvent, CloseAnswered, ConnectionLost, PeerClosed, WsChannel

__all__ = ["serve_connect", "serve_accept", "pump", "Direction"]

log: logging.Logger = logging.getLogger(__name__)


def serve_connect(incoming: Incoming) -> Optional[Refusal]:
    """``sb-hc-action=connect``: hold the sender's upgrade until a listener accepts (or rejects) it."""
    admitted = admit(incoming, "Send")
    if isinstance(admitted, Refusal):
        return admitted
    entity = admitted.entity
    channel = pick_for(incoming, entity, incoming.ctx.fidelity.no_listener_connect_status)
    if isinstance(channel, Refusal):
        return channel
    connect_headers = forwarded_headers(
        raw_headers(incoming.request.headers.raw_items()), admitted.source, drop=("Sec-WebSocket-Extensions",)
    )
    pending = _offer(incoming, entity, admitted.suffix, channel, connect_headers)
    if isinstance(pending, Refusal):
        return pending
    try:
        sender_ws = incoming.conn.accept_websocket(incoming, pending.subprotocol, name=f"sender {pending.id}")
    except BaseException:
        pending.sender_ready.set()  # sender_ws stays None: the listener side is closed
        raise
    sender_ws.relay_close = True
    # The sender's side sits behind the same load balancer: idle for as long, it is dropped too.
    sender_ws.idle_timeout = incoming.ctx.fidelity.idle_timeout
    pending.sender_ws = sender_ws
    pending.sender_ready.set()
    log.info("connection %s accepted on %s (listener %s)", pending.id, entity.name, channel.listener_id)
    assert pending.listener_ws is not None  # accepted
    pump(sender_ws, pending.listener_ws, "The sender client shut down the connection", incoming.ctx.frame_relay)
    log.info("connection %s on %s closed", pending.id, entity.name)
    return None


def _offer(
    incoming: Incoming, entity: Entity, suffix: str, channel: ListenerChannel, connect_headers: Dict[str, str]
) -> Union[PendingAccept, Refusal]:
    """Send the ``accept`` message and wait for the listener: the accepted connection, or a refusal."""
    ctx = incoming.ctx
    # The sender's sb-hc-id is only for tracing: with Azure's role suffixes it is the public id
    # (deduplicated by the registry); the address also holds a secret only the listener is told.
    tracking = incoming.target.param("sb-hc-id") or str(uuid.uuid4())
    pending = PendingAccept(entity, f"{tracking}_G0_G1", time.monotonic() + ctx.accept_timeout, mint_secret())
    key = ctx.registry.add_accept(pending)
    try:
        address = rendezvous_address(
            channel.base_url, entity.name, action="accept", id=keyed_id(key, pending.secret), suffix=suffix,
            query=incoming.target.query,
        )
        peer = incoming.conn.peer
        accept = Accept(
            address=address,
            id=key,
            connect_headers=connect_headers,
            extra={"remoteEndpoint": {"address": peer[0], "port": peer[1]}},
        )
        if not channel.send(serialize_message(accept)):
            return incoming.refusal(incoming.ctx.fidelity.no_listener_connect_status, NO_LISTENERS, entity.name)
        state = pending.wait()
    finally:
        ctx.registry.pop_accept(key)
    if state == PendingAccept.REJECTED:
        log.info(
            "connection %s on %s rejected by the listener: %d %s",
            key,
            entity.name,
            pending.reject_status,
            pending.reject_description,
        )
        return Refusal(pending.reject_status, pending.reject_description)
    if state != PendingAccept.ACCEPTED or pending.listener_ws is None:
        if pending.failure == "timeout":
            log.info("connection %s on %s: no listener accepted within %.0f s", key, entity.name, ctx.accept_timeout)
            text = f"The listener did not accept the connection within {ctx.accept_timeout:g} seconds"
            return incoming.refusal(504, text, entity.name)
        return incoming.refusal(502, f"The connection could not be completed: {pending.failure}", entity.name)
    return pending


def serve_accept(incoming: Incoming) -> Optional[Refusal]:
    """``sb-hc-action=accept``: the listener accepts a waiting sender (or rejects it with ``sb-hc-statusCode``)."""
    ctx, target = incoming.ctx, incoming.target
    keyed = split_keyed_id(target.param("sb-hc-id"))
    pending = ctx.registry.find_accept(keyed[0]) if keyed else None
    found = ctx.registry.resolve(target.path, ctx.fidelity.case_sensitive_names)
    if keyed is None or pending is None or found is None or found[0] is not pending.entity:
        return incoming.refusal(403, "The rendezvous address is not valid or has expired")
    if not secret_matches(pending.secret, keyed[1]):
        # A guessed or forged address: refused like an unknown one, and the sender keeps waiting
        # for its real listener (failing it would let anyone cancel other people's connections).
        log.warning("connection %s: an accept or reject with a wrong rendezvous key was refused", pending.id)
        return incoming.refusal(403, "The rendezvous address is not valid or has expired")
    key = pending.id
    status_text = target.param("sb-hc-statusCode", "statusCode")
    if status_text is not None:
        return _reject(incoming, pending, status_text)
    if not pending.claim():
        return incoming.refusal(403, "The rendezvous address was already used or has expired")
    offered = parse_subprotocols(incoming.headers.get("sec-websocket-protocol"))
    subprotocol = offered[0] if offered else None
    try:
        listener_ws = incoming.conn.accept_websocket(incoming, subprotocol, name=f"listener {key}")
    except BaseException:
        pending.fail("the listener's rendezvous handshake failed")
        raise
    listener_ws.idle_timeout = incoming.ctx.fidelity.idle_timeout
    pending.accepted(listener_ws, subprotocol)
    if not pending.sender_ready.wait(ctx.accept_timeout + 5) or pending.sender_ws is None:
        listener_ws.send_close(1001, close_reason("The sender client shut down the connection"))
        pump(listener_ws, None, "", ctx.frame_relay)
        return None
    listener_ws.relay_close = True
    pump(listener_ws, pending.sender_ws, "The listener shut down the connection", ctx.frame_relay)
    return None


def _reject(incoming: Incoming, pending: PendingAccept, status_text: str) -> Refusal:
    """The listener rejects the sender: the sender gets its status; the listener gets 410."""
    status = optional_int(status_text)
    if status is None or not 200 <= status <= 599:
        return incoming.refusal(400, f"Invalid rejection status code {status_text!r}")
    if not pending.claim():
        return incoming.refusal(403, "The rendezvous address was already used or has expired")
    description = incoming.target.param("sb-hc-statusDescription", "statusDescription") or standard_phrase(
        status, "Rejected"
    )
    pending.rejected(status, description)
    return incoming.refusal(410, "Gone: the connection was rejected")


class Direction:
    """One direction of a relayed WebSocket: what ``src``'s peer sends goes on to ``dst``.

    A close ``src``'s peer started goes on to ``dst`` and ``src`` keeps
    sending (``relay_close``) until ``dst``'s peer answers: that answer reaches
    ``src`` as ``dst``'s :class:`CloseAnswered`, relayed by the other direction. A
    socket lost without a close frame drops ``dst`` too (its peer sees a
    transport error, not a clean close); a peer that broke the protocol is
    reported to ``dst`` with 1001.
    """

    __slots__ = ("src", "dst", "lost_reason", "closing")
    src: WsChannel
    dst: Optional[WsChannel]
    lost_reason: str
    closing: bool

    def __init__(self, src: WsChannel, dst: Optional[WsChannel], lost_reason: str) -> None:
        self.src = src
        self.dst = dst
        self.lost_reason = lost_reason
        self.closing = False  # src's peer closed first and its close went on to dst

    def step(self, events: List[ChannelEvent]) -> bool:
        """Forward what ``src`` delivered; False once this direction has ended."""
        src, dst = self.src, self.dst
        for event in events:
            if isinstance(event, (TextMessage, BytesMessage)):
                if dst is not None:
                    dst.send_message(event.data, event.message_finished)
            elif isinstance(event, PeerClosed):
                if dst is not None:
                    dst.send_close(event.code, event.reason)
                if dst is None or not src.relay_close:
                    return False
                self.closing = True
            elif isinstance(event, CloseAnswered):
                if dst is not None:  # dst's peer closed first: this is its answer
                    dst.send_close(event.code, event.reason)
                return False
            elif isinstance(event, ConnectionLost):
                if dst is not None and not self.closing:
                    if event.code is None:
                        dst.abort()
                    else:
                        dst.send_close(1001, close_reason(self.lost_reason))
                return False
        return True


def pump(src: WsChannel, dst: Optional[WsChannel], lost_reason: str, frames: Optional[FrameRelay] = None) -> None:
    """Forward ``src``'s frames into ``dst`` until ``src`` closes (:class:`Direction`); closes are
    relayed end to end. On ``frames`` (the emulator's :class:`~.frame_relay.FrameRelay`) when
    given and able, else on this thread."""
    direction = Direction(src, dst, lost_reason)
    if frames is not None and frames.can_relay(src) and frames.pump(direction):
        return
    while direction.step(src.read_events(None)):
        pass
