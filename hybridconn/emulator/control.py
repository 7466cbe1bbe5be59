"""Listener control channels: registration, the read loop, token renewal and expiry.

A control channel carries the service's ``accept`` and ``request`` messages
to the listener, and the listener's ``response`` and ``renewToken`` messages
back. Responses are paired with their body frames by
:class:`~hybridconn.protocol.FrameAssembler`; a body over 64 kB, or a
listener answering 502/504, fails that request with 500.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any, Dict, List, Optional

import h11
from wsproto.events import BytesMessage, TextMessage

from ..protocol import (
    CONTROL_CHANNEL_BODY_LIMIT,
    FrameAssembler,
    MessageReceived,
    ProtocolViolation,
    RenewToken,
    Response,
)
from .access import KeyRing
from .context import EmulatorContext, Target
from .gate import audiences, authorize, resolve_entity
from .registry import ListenerChannel, PendingRequest
from .status import Refusal, describe, new_tracking_id
from .ws import ConnectionLost, PeerClosed

__all__ = ["serve_listen", "deliver_response", "close_reason"]

log = logging.getLogger(__name__)

#: Longest wait between checks of a stalled channel's release (bounded waits only).
STALL_CHECK = 5.0


def close_reason(text: str) -> str:
    """A close reason that fits the 123-byte limit and still carries a tracking id."""
    return f"{text} TrackingId:{new_tracking_id()}"


def serve_listen(conn: Any, request: h11.Request, target: Target, headers: Dict[str, str]) -> None:
    ctx: EmulatorContext = conn.ctx
    entity, _suffix = resolve_entity(conn, target)
    source = authorize(conn, target, headers, entity, "Listen")
    if entity.refuse_until > time.monotonic():
        raise Refusal(
            entity.refuse_status,
            describe("The service is temporarily unable to accept listeners; try again later", conn.tracker(entity.name)),
        )
    ctx.registry.check_capacity(entity)
    listener_id = target.param("sb-hc-id") or str(uuid.uuid4())
    base_url = f"{ctx.ws_scheme}://{headers.get('host') or ctx.authority}"
    channel = ListenerChannel(entity, listener_id, None, base_url, KeyRing.expiry(source.token or ""))  # type: ignore[arg-type]
    channel.audiences = audiences(conn, headers, entity)  # type: ignore[attr-defined]

    def register(ws: Any) -> None:
        channel.ws = ws
        ctx.registry.add_listener(channel)  # a 26th listener: the 403 refusal goes out instead of 101

    conn.accept_websocket(request, headers, None, name=f"control channel {listener_id}", register=register)
    conn.channel = channel
    log.info("listener %s online on %s (%d connected)", channel.listener_id, entity.name, len(entity.listeners))
    try:
        _control_loop(ctx, channel)
    finally:
        ctx.registry.remove_listener(channel)
        log.info("listener %s offline on %s", channel.listener_id, entity.name)
        for pending in ctx.registry.requests_on(channel):
            if not pending.linked and not pending.answered:
                pending.put_now(("fail", 502, describe("The listener disconnected before it responded", conn.tracker(entity.name))))


def _control_loop(ctx: EmulatorContext, channel: ListenerChannel) -> None:
    ws = channel.ws
    assembler = FrameAssembler(max_body=CONTROL_CHANNEL_BODY_LIMIT)
    text_parts: List[str] = []
    last_text = ""
    expiry_closing = False
    while not ctx.stop.is_set():
        if channel.stalled.is_set():
            # A silent half-open channel: read nothing, write nothing, answer no ping.
            while not channel.released.wait(STALL_CHECK) and not ctx.stop.is_set():
                pass
            return
        remaining = channel.expires_at - time.time()
        if remaining <= 0 and not expiry_closing:
            expiry_closing = True
            log.info("listener %s: token expired without renewal; closing with 1008", channel.listener_id)
            ws.send_close(1008, close_reason("The security token has expired"))
        events = ws.read_events(timeout=None if expiry_closing else max(0.0, min(remaining, 60.0)))
        for event in events:
            if isinstance(event, TextMessage):
                text_parts.append(event.data)
                if event.message_finished:
                    last_text, text_parts = "".join(text_parts), []
                outcomes = assembler.receive_text(event.data, event.message_finished)
            elif isinstance(event, BytesMessage):
                outcomes = assembler.receive_binary(bytes(event.data), event.message_finished)
            else:
                if isinstance(event, PeerClosed):
                    log.info("listener %s closed its control channel (%s %s)", channel.listener_id, event.code, event.reason)
                elif isinstance(event, ConnectionLost):
                    log.info("listener %s control channel lost: %s", channel.listener_id, event.reason)
                return
            for outcome in outcomes:
                if isinstance(outcome, MessageReceived):
                    _on_message(ctx, channel, outcome)
                elif isinstance(outcome, ProtocolViolation):
                    _on_violation(ctx, channel, outcome, last_text)


def _on_message(ctx: EmulatorContext, channel: ListenerChannel, received: MessageReceived) -> None:
    message = received.message
    if isinstance(message, Response):
        pending = ctx.registry.find_request(message.request_id)
        if pending is None:
            log.info("listener %s answered unknown or finished request %s", channel.listener_id, message.request_id)
            return
        deliver_response(ctx, pending, message, received.body)
    elif isinstance(message, RenewToken):
        try:
            ctx.keyring.check(message.token, getattr(channel, "audiences", []), "Listen")
        except PermissionError as exc:
            log.info("listener %s sent an invalid renewToken (%s); closing with 1008", channel.listener_id, exc.args[1])
            channel.ws.send_close(1008, close_reason("The renewed token is invalid"))
            return
        channel.expires_at = KeyRing.expiry(message.token)
        log.info("listener %s renewed its token", channel.listener_id)
    else:
        log.warning("listener %s sent an unexpected %s message; ignored", channel.listener_id, type(message).__name__)


def deliver_response(ctx: EmulatorContext, pending: PendingRequest, response: Response, body: Optional[bytes]) -> None:
    """A complete response (head and whole body) for ``pending``."""
    if pending.answered:
        log.info("request %s was answered twice; the second response is ignored", pending.id)
        return
    pending.answered = True
    if response.status_code < 200:
        pending.put_now(("fail", 500, describe(f"The listener sent an invalid status code {response.status_code}", ctx.authority)))
        return
    # a complete response: the head carries the whole body, so its length is known
    pending.put(("head", response, body or b""), ctx.stop)


def _on_violation(ctx: EmulatorContext, channel: ListenerChannel, violation: ProtocolViolation, last_text: str) -> None:
    message = violation.message
    request_id: Optional[str] = None
    if isinstance(message, Response):
        request_id = message.request_id
    elif message is None:
        request_id = _response_id(last_text)
    pending = ctx.registry.find_request(request_id) if request_id else None
    if pending is None or pending.answered:
        log.warning("listener %s broke the control channel protocol: %s", channel.listener_id, violation.error)
        return
    pending.answered = True
    log.warning("request %s failed: listener %s violated the protocol: %s", pending.id, channel.listener_id, violation.error)
    if isinstance(message, Response):
        text = (
            "The listener's response body exceeds 64 kB on the control channel "
            "(larger responses must use the rendezvous address)"
        )
    else:
        text = f"The listener sent an invalid response: {violation.error}"
    pending.put_now(("fail", 500, describe(text, f"{ctx.authority}:{pending.entity.name}")))


def _response_id(text: str) -> Optional[str]:
    try:
        document = json.loads(text)
        value = document["response"]["requestId"]
    except (ValueError, TypeError, KeyError):
        return None
    return value if isinstance(value, str) else None
