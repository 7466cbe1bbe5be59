"""Listener control channels: registration, the read loop, token renewal and expiry.

A control channel carries the service's ``accept`` and ``request`` messages
to the listener, and the listener's ``response`` and ``renewToken`` messages
back. Responses are paired with their body frames by
:class:`~hybridconn.protocol.FrameAssembler`; a body over 64 kB, or a
listener answering 1xx, fails that request with 500 (a listener's 502/504 are delivered, as the
service does).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Optional
from urllib.parse import urlsplit

from wsproto.events import BytesMessage, TextMessage

from ..protocol import (
    CONTROL_CHANNEL_BODY_LIMIT,
    CONTROL_MESSAGE_SIZE,
    FrameAssembler,
    MessageReceived,
    ProtocolViolation,
    RenewToken,
    Response,
    ViolationCause,
    listener_may_send,
)
from .access import Denied, KeyRing
from .context import EmulatorContext
from .entities import ListenerChannel
from .exchange import ListenerLeft, PendingRequest, ResponseReady
from .fidelity import NAME_RENEWAL_FAILED
from .gate import admit, audiences
from .http_conn import Incoming
from .status import Refusal, close_reason, describe
from .ws import CloseAnswered, ConnectionLost, PeerClosed

__all__ = ["serve_listen", "deliver_response"]

log: logging.Logger = logging.getLogger(__name__)

#: Longest wait between checks of a stalled channel's release (bounded waits only).
STALL_CHECK = 5.0


def serve_listen(incoming: Incoming) -> Optional[Refusal]:
    """``sb-hc-action=listen``: register a listener and serve its control channel until it closes."""
    ctx = incoming.ctx
    admitted = admit(incoming, "Listen")
    if isinstance(admitted, Refusal):
        return admitted
    entity = admitted.entity
    if entity.refuse_until > time.monotonic():
        text = "The service is temporarily unable to accept listeners; try again later"
        return Refusal(entity.refuse_status, describe(text, incoming.tracker(entity.name)))
    refusal = ctx.registry.check_capacity(entity)
    if refusal is not None:
        return refusal
    listener_id = incoming.target.param("sb-hc-id") or str(uuid.uuid4())
    channel = ListenerChannel(
        entity,
        listener_id,
        incoming.conn.new_websocket(f"control channel {listener_id}", max_message_size=CONTROL_MESSAGE_SIZE),
        base_url=_rendezvous_base(ctx, incoming.headers.get("host")),
        audiences=audiences(incoming, entity),
        expires_at=KeyRing.expiry(admitted.source.token or ""),
    )
    fidelity = ctx.fidelity
    channel.ws.idle_timeout = fidelity.idle_timeout
    channel.ws.pong_interval = fidelity.service_pong_interval
    channel.ws.close_on_ping = fidelity.on_ping == "close"
    # A 26th listener racing this one: the 403 refusal goes out instead of the 101.
    refusal = incoming.conn.admit_websocket(incoming, channel.ws, lambda: ctx.registry.add_listener(channel))
    if refusal is not None:
        return refusal
    log.info("listener %s online on %s (%d connected)", channel.listener_id, entity.name, len(entity.listeners))
    clean = False
    try:
        clean = _control_loop(ctx, channel)
    finally:
        ctx.registry.remove_listener(channel)
        log.info("listener %s offline on %s", channel.listener_id, entity.name)
        gone = Refusal(502, describe("The listener disconnected before it responded", incoming.tracker(entity.name)))
        # A listener that left cleanly may still answer over a request's rendezvous address (a
        # draining listener does, for the requests that were on their way when it closed).
        outcome = ListenerLeft(ctx.close_grace, gone) if clean and ctx.close_grace > 0 else gone
        for pending in ctx.registry.requests_on(channel):
            if not pending.linked and not pending.answered:
                pending.put_now(outcome)
    return None


def _rendezvous_base(ctx: EmulatorContext, host_header: Optional[str]) -> str:
    """``scheme://host[:port]`` of the rendezvous addresses minted for a listener's channel."""
    authority = host_header or ctx.authority
    alias = ctx.fidelity.rendezvous_host
    if alias:
        try:
            port = urlsplit(f"//{authority}").port
        except ValueError:  # a Host header with a junk port: keep the one we listen on
            port = None
        host = f"[{alias}]" if ":" in alias else alias
        authority = f"{host}:{port}" if port else host
    return f"{ctx.ws_scheme}://{authority}"


def _control_loop(ctx: EmulatorContext, channel: ListenerChannel) -> bool:
    """Serve the channel until it ends; True when the listener closed it cleanly (1000) itself,
    or answered the service's restart close."""
    ws = channel.ws
    assembler = FrameAssembler(max_body=CONTROL_CHANNEL_BODY_LIMIT)
    expiry_closing = False
    interval = ctx.fidelity.restart_interval
    restart_at = None if interval is None else time.monotonic() + interval
    while not ctx.stop.is_set():
        if channel.stalled.is_set():
            # A silent half-open channel: read nothing, write nothing, answer no ping.
            while not channel.released.wait(STALL_CHECK) and not ctx.stop.is_set():
                pass
            return False
        remaining = channel.expires_at - time.time()
        if remaining <= 0 and not expiry_closing:
            expiry_closing = True
            log.info("listener %s: token expired without renewal; closing with 1008", channel.listener_id)
            ws.send_close(1008, close_reason("The security token has expired"))
        if restart_at is not None and time.monotonic() >= restart_at:
            restart_at = None
            restart_channel(ctx, channel)
        wait = max(0.0, min(remaining, 60.0, 60.0 if restart_at is None else restart_at - time.monotonic()))
        for event in ws.read_events(timeout=None if expiry_closing else wait):
            if isinstance(event, TextMessage):
                outcomes = assembler.receive_text(event.data, event.message_finished)
            elif isinstance(event, BytesMessage):
                outcomes = assembler.receive_binary(event.data, event.message_finished)
            else:
                if isinstance(event, PeerClosed):
                    log.info(
                        "listener %s closed its control channel (%s %s)", channel.listener_id, event.code, event.reason
                    )
                    return event.code == 1000 and not expiry_closing
                if isinstance(event, ConnectionLost):
                    log.info("listener %s control channel lost: %s", channel.listener_id, event.reason)
                # A restart answered: requests already routed stay answerable over their rendezvous.
                return isinstance(event, CloseAnswered) and channel.restarting
            for outcome in outcomes:
                if isinstance(outcome, MessageReceived):
                    _on_message(ctx, channel, outcome)
                elif isinstance(outcome, ProtocolViolation):
                    _on_violation(ctx, channel, outcome)
    return False  # the emulator is stopping


def restart_channel(ctx: EmulatorContext, channel: ListenerChannel) -> None:
    """Close ``channel`` as the service does about daily: 1011 with a ``NameRenewalFailed`` reason.

    Nothing new is routed to it from now on; what was routed stays answerable (see ``close_grace``).
    """
    log.info("listener %s: restarting its control channel (1011 NameRenewalFailed)", channel.listener_id)
    channel.restarting = True
    ctx.registry.remove_listener(channel)
    channel.ws.send_close(1011, close_reason(NAME_RENEWAL_FAILED))


def _on_message(ctx: EmulatorContext, channel: ListenerChannel, received: MessageReceived) -> None:
    message = received.message
    if isinstance(message, Response):
        pending = ctx.registry.find_request(message.request_id)
        if pending is None:
            log.info("listener %s answered unknown or finished request %s", channel.listener_id, message.request_id)
            return
        deliver_response(ctx, pending, message, received.body)
    elif isinstance(message, RenewToken):
        verdict = ctx.keyring.check(message.token, channel.audiences, "Listen")
        if isinstance(verdict, Denied):
            log.info(
                "listener %s sent an invalid renewToken (%s); closing with 1008", channel.listener_id, verdict.reason
            )
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
    if not listener_may_send(response.status_code):
        pending.put_now(invalid_status(ctx, response))
        return
    # a complete response: the head carries the whole body, so its length is known
    pending.put(ResponseReady(response, body or b""), ctx.stop)


def invalid_status(ctx: EmulatorContext, response: Response) -> Refusal:
    """The 500 a sender gets when the listener answered with a status it may not send."""
    return Refusal(500, describe(f"The listener sent an invalid status code {response.status_code}", ctx.authority))


def _on_violation(ctx: EmulatorContext, channel: ListenerChannel, violation: ProtocolViolation) -> None:
    request_id = violation.request_id if violation.kind == "response" else None
    pending = ctx.registry.find_request(request_id) if request_id else None
    if pending is None or pending.answered:
        log.warning("listener %s broke the control channel protocol: %s", channel.listener_id, violation.error)
        return
    log.warning(
        "request %s failed: listener %s violated the protocol: %s", pending.id, channel.listener_id, violation.error
    )
    if violation.cause is ViolationCause.BODY_TOO_LARGE:
        text = (
            "The listener's response body exceeds 64 kB on the control channel "
            "(larger responses must use the rendezvous address)"
        )
    else:
        text = f"The listener sent an invalid response: {violation.error}"
    pending.fail(Refusal(500, describe(text, ctx.tracker(pending.entity.name))))
