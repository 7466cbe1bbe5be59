"""Relayed WebSockets: the sender's connect, the listener's accept or reject, the frame pump.

The sender's upgrade is held until a listener connects to the rendezvous
address of the ``accept`` message. Then each side's connection thread pumps
its own socket into the other: text stays text, binary stays binary, message
boundaries are kept, and a close started by either peer reaches the other
with its code and reason (the answering close is never relayed).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Dict, Optional
from urllib.parse import quote

import h11
from wsproto.events import BytesMessage, TextMessage

from ..addresses import strip_relay_query
from ..protocol import Accept, serialize_message
from .context import EmulatorContext, Target, raw_headers
from .control import close_reason
from .gate import authorize, forwarded_headers, optional_int, resolve_entity
from .registry import PendingAccept
from .status import Refusal, describe, standard_phrase
from .ws import CloseAnswered, ConnectionLost, PeerClosed, WsChannel

__all__ = ["serve_connect", "serve_accept", "pump", "rendezvous_address"]

log = logging.getLogger(__name__)

_PATH_SAFE = "/-._~!'()*"


def rendezvous_address(base_url: str, entity: str, suffix: str, query: str, action: str, key: str) -> str:
    """``{base}/$hc/{entity}{suffix}?{application query&}sb-hc-action=..&sb-hc-id=..``."""
    app_query = strip_relay_query(query)
    relay_query = f"sb-hc-action={action}&sb-hc-id={quote(key, safe='')}"
    full_query = f"{app_query}&{relay_query}" if app_query else relay_query
    return f"{base_url}/$hc/{quote(entity, safe=_PATH_SAFE)}{quote(suffix, safe=_PATH_SAFE)}?{full_query}"


def serve_connect(conn: Any, request: h11.Request, target: Target, headers: Dict[str, str]) -> None:
    ctx: EmulatorContext = conn.ctx
    entity, suffix = resolve_entity(conn, target)
    source = authorize(conn, target, headers, entity, "Send", anonymous_ok=not entity.requires_client_authorization)
    channel = ctx.registry.pick_listener(entity)
    if channel is None:
        raise Refusal(404, describe("There are no listeners connected for the endpoint", conn.tracker(entity.name)))
    pending = PendingAccept(entity, target.param("sb-hc-id") or str(uuid.uuid4()), time.monotonic() + ctx.accept_timeout)
    key = ctx.registry.add_accept(pending)
    try:
        address = rendezvous_address(channel.base_url, entity.name, suffix, target.query, "accept", key)
        connect_headers = forwarded_headers(
            raw_headers(request.headers.raw_items()), source, drop=("Sec-WebSocket-Extensions",)
        )
        accept = Accept(
            address=address,
            id=key,
            connect_headers=connect_headers,
            extra={"remoteEndpoint": {"address": conn.peer[0], "port": conn.peer[1]}},
        )
        if not channel.send(serialize_message(accept)):
            raise Refusal(404, describe("There are no listeners connected for the endpoint", conn.tracker(entity.name)))
        state = pending.wait()
    finally:
        ctx.registry.pop_accept(key)
    if state == PendingAccept.REJECTED:
        log.info("connection %s on %s rejected by the listener: %d %s", key, entity.name, pending.reject_status, pending.reject_description)
        raise Refusal(pending.reject_status, pending.reject_description)
    if state != PendingAccept.ACCEPTED or pending.listener_ws is None:
        if pending.failure == "timeout":
            log.info("connection %s on %s: no listener accepted within %.0f s", key, entity.name, ctx.accept_timeout)
            raise Refusal(
                504,
                describe(f"The listener did not accept the connection within {ctx.accept_timeout:g} seconds", conn.tracker(entity.name)),
            )
        raise Refusal(502, describe(f"The connection could not be completed: {pending.failure}", conn.tracker(entity.name)))
    try:
        sender_ws = conn.accept_websocket(request, headers, pending.subprotocol, name=f"sender {key}")
    except BaseException:
        pending.sender_ready.set()  # sender_ws stays None: the listener side is closed
        raise
    pending.sender_ws = sender_ws
    pending.sender_ready.set()
    log.info("connection %s accepted on %s (listener %s)", key, entity.name, channel.listener_id)
    pump(sender_ws, pending.listener_ws, "The sender client shut down the connection")
    log.info("connection %s on %s closed", key, entity.name)


def serve_accept(conn: Any, request: h11.Request, target: Target, headers: Dict[str, str]) -> None:
    ctx: EmulatorContext = conn.ctx
    key = target.param("sb-hc-id")
    pending = ctx.registry.find_accept(key) if key else None
    found = ctx.registry.resolve(target.path)
    if pending is None or found is None or found[0] is not pending.entity:
        raise Refusal(403, describe("The rendezvous address is not valid or has expired", conn.tracker(target.path)))
    status_text = target.param("sb-hc-statusCode", "statusCode")
    if status_text is not None:
        status = optional_int(status_text)
        if status is None or not 200 <= status <= 599:
            raise Refusal(400, describe(f"Invalid rejection status code {status_text!r}", conn.tracker(target.path)))
        if not pending.claim():
            raise Refusal(403, describe("The rendezvous address was already used or has expired", conn.tracker(target.path)))
        description = target.param("sb-hc-statusDescription", "statusDescription") or standard_phrase(status, "Rejected")
        pending.rejected(status, description)
        raise Refusal(410, describe("Gone: the connection was rejected", conn.tracker(target.path)))
    if not pending.claim():
        raise Refusal(403, describe("The rendezvous address was already used or has expired", conn.tracker(target.path)))
    offered = headers.get("sec-websocket-protocol", "")
    subprotocol: Optional[str] = offered.split(",")[0].strip() or None
    try:
        listener_ws = conn.accept_websocket(request, headers, subprotocol, name=f"listener {key}")
    except BaseException:
        pending.fail("the listener's rendezvous handshake failed")
        raise
    pending.accepted(listener_ws, subprotocol)
    if not pending.sender_ready.wait(ctx.accept_timeout + 5) or pending.sender_ws is None:
        listener_ws.send_close(1001, close_reason("The sender client shut down the connection"))
        pump(listener_ws, None, "")
        return
    pump(listener_ws, pending.sender_ws, "The listener shut down the connection")


def pump(src: WsChannel, dst: Optional[WsChannel], lost_reason: str) -> None:
    """Forward ``src``'s frames into ``dst`` until ``src`` closes; relay a close the peer started."""
    while True:
        for event in src.read_events(None):
            if isinstance(event, (TextMessage, BytesMessage)):
                if dst is not None:
                    dst.send_message(event.data, event.message_finished)
            elif isinstance(event, PeerClosed):
                if dst is not None:
                    dst.send_close(event.code, event.reason)
                return
            elif isinstance(event, CloseAnswered):
                return
            elif isinstance(event, ConnectionLost):
                if dst is not None:
                    dst.send_close(1001, close_reason(lost_reason))
                return
