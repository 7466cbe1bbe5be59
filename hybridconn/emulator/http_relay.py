"""Relayed HTTP: a sender's request becomes a ``request`` message, the listener's ``response`` an HTTP response.

A request whose body is known and at most 64 kB (headers within 32 kB) goes
over the control channel with its body as one binary message. A larger or
chunked one goes address-only; the listener connects to the address and gets
the whole request there, body streamed. The response is written back with a
``Via`` header, and with ``Content-Length`` only when the whole body is known
(otherwise h11 chunks it). No listener -> 502; no response in time -> 504.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any, Dict, List, Optional, Tuple

import h11

from ..addresses import strip_relay_query
from ..protocol import (
    CONTROL_CHANNEL_BODY_LIMIT,
    HEADER_METADATA_LIMIT,
    Request,
    Response,
    header_metadata_size,
    is_stripped_header,
    serialize_message,
    strip_hop_headers,
)
from .context import EmulatorContext, Target, raw_headers
from .gate import authorize, forwarded_headers, optional_int
from .http_conn import WRITE_TIMEOUT, ConnectionDone
from .registry import PendingRequest
from .relay import rendezvous_address
from .rendezvous import RendezvousLink, serve_rendezvous
from .status import Refusal, describe, reason_phrase, standard_phrase

__all__ = ["serve_http", "serve_rendezvous"]

log = logging.getLogger(__name__)

_NO_BODY_STATUS = (204, 304)


def serve_http(conn: Any, request: h11.Request, target: Target, headers: Dict[str, str]) -> bool:
    """Relay one request; True to keep the sender's connection open."""
    ctx: EmulatorContext = conn.ctx
    started = time.monotonic()
    request_id = str(uuid.uuid4())
    method = request.method.decode("ascii", "replace")
    status = 0
    try:
        status = _relay(conn, ctx, request, target, headers, request_id, method)
        return True
    except Refusal as refusal:
        status = refusal.status
        drained = conn.finish_request_body()
        conn.refuse(refusal.status, refusal.description, close=not drained)
        return drained
    except ConnectionDone:
        status = status or 0
        raise
    finally:
        if log.isEnabledFor(logging.INFO):  # one line per request: build its arguments only when shown
            log.info(
                "request %s %s %s -> %s (%.1f ms)", request_id, method, "/" + target.path.lstrip("/"), status or "dropped",
                (time.monotonic() - started) * 1000,
            )


def _relay(conn: Any, ctx: EmulatorContext, request: h11.Request, target: Target, headers: Dict[str, str], request_id: str, method: str) -> int:
    found = ctx.registry.resolve(target.path)
    if found is None:
        name = target.path.split("/", 1)[0]
        raise Refusal(404, describe(f"Hybrid connection {name!r} does not exist", conn.tracker(name)))
    entity, suffix = found
    source = authorize(conn, target, headers, entity, "Send", anonymous_ok=not entity.requires_client_authorization)
    forward = strip_hop_headers(forwarded_headers(raw_headers(request.headers.raw_items()), source, drop=("Expect",)))
    query = strip_relay_query(target.query)
    request_target = target.raw_path + (f"?{query}" if query else "")
    if conn.h11.they_are_waiting_for_100_continue:
        conn.send(h11.InformationalResponse(status_code=100, headers=[]))
    length = optional_int(headers.get("content-length"))
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    small = not chunked and (length or 0) <= CONTROL_CHANNEL_BODY_LIMIT and header_metadata_size(forward) <= HEADER_METADATA_LIMIT

    link: Optional[RendezvousLink] = conn.link if conn.link is not None and conn.link.alive else None
    channel = None
    if link is None:
        channel = ctx.registry.pick_listener(entity)
        if channel is None:
            raise Refusal(502, describe("There are no listeners connected for the endpoint", conn.tracker(entity.name)))
        address = rendezvous_address(channel.base_url, entity.name, suffix, target.query, "request", request_id)
    else:
        address = link.address
    pending = PendingRequest(entity, request_id, address, conn)
    pending.channel = channel
    ctx.registry.add_request(pending)
    try:
        message = Request(address=address, id=request_id, method=method, request_target=request_target, request_headers=forward)
        if link is not None:
            pending.linked = True
            _send_over_link(conn, link, pending, message, small)
        elif small:
            body = _read_body(conn)
            sent = channel.send(serialize_message(_with_body(message, bool(body))), body or None)  # type: ignore[union-attr]
            if not sent:
                raise Refusal(502, describe("The listener's control channel closed", conn.tracker(entity.name)))
        else:
            # address-only: the listener fetches the whole request over the rendezvous socket
            channel.send(json.dumps({"request": {"address": address, "id": request_id}}, separators=(",", ":")))  # type: ignore[union-attr]
            return _answer(conn, ctx, pending, message, small, method, request_sent=False)
        return _answer(conn, ctx, pending, message, small, method, request_sent=True)
    finally:
        pending.done.set()
        ctx.registry.pop_request(request_id)
        if conn.link is not None and conn.link.current is pending:
            conn.link.current = None


def _with_body(message: Request, has_body: bool) -> Request:
    return Request(
        address=message.address,
        id=message.id,
        method=message.method,
        request_target=message.request_target,
        request_headers=message.request_headers,
        has_body=has_body,
    )


def _read_body(conn: Any) -> bytes:
    chunks: List[bytes] = []
    while True:
        event = conn.next_event(WRITE_TIMEOUT)
        if isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            return b"".join(chunks)
        else:
            raise ConnectionDone()


def _send_over_link(conn: Any, link: RendezvousLink, pending: PendingRequest, message: Request, small: bool) -> None:
    if small:
        body = _read_body(conn)
        ok = link.send_request(pending, _with_body(message, bool(body)), body)
    else:
        first = conn.next_event(WRITE_TIMEOUT)
        if isinstance(first, h11.EndOfMessage):
            ok = link.send_request(pending, _with_body(message, False), None)
        else:
            ok = link.start_streamed_request(pending, _with_body(message, True))
            event = first
            while ok:
                if isinstance(event, h11.Data):
                    if event.data:
                        ok = link.send_body(bytes(event.data), False)
                elif isinstance(event, h11.EndOfMessage):
                    ok = link.send_body(b"", True)
                    break
                else:
                    raise ConnectionDone()
                event = conn.next_event(WRITE_TIMEOUT)
    if not ok:
        raise ConnectionDone()  # the rendezvous socket is gone: the sender's connection goes too


def _answer(
    conn: Any, ctx: EmulatorContext, pending: PendingRequest, message: Request, small: bool, method: str, request_sent: bool
) -> int:
    """Wait for the outcome and write it to the sender; returns the status sent."""
    deadline = time.monotonic() + ctx.response_timeout
    while True:
        item = _next_item(pending, deadline - time.monotonic())
        if item is None:
            pending.answered = True
            log.info("request %s: no response within %g s", pending.id, ctx.response_timeout)
            raise Refusal(504, describe(f"The listener did not respond within {ctx.response_timeout:g} seconds", conn.tracker(pending.entity.name)))
        kind = item[0]
        if kind == "link":
            if not request_sent:  # address-only: the whole request goes over the new socket
                request_sent = True
                _send_over_link(conn, item[1], pending, message, small)
                deadline = time.monotonic() + ctx.response_timeout
            continue
        if kind == "fail":
            raise Refusal(item[1], item[2])
        if kind == "abort":
            log.info("request %s: dropping the sender's connection: %s", pending.id, item[1])
            raise ConnectionDone()
        if kind == "head":
            return _write_response(conn, ctx, pending, item[1], item[2] if len(item) > 2 else None, method)


def _next_item(pending: PendingRequest, timeout: float) -> Optional[Tuple[Any, ...]]:
    return pending.get(timeout) if timeout > 0 else None


def _write_response(conn: Any, ctx: EmulatorContext, pending: PendingRequest, response: Response, body: Optional[bytes], method: str) -> int:
    status = response.status_code
    bodiless = method == "HEAD" or status in _NO_BODY_STATUS
    headers: List[Tuple[str, str]] = []
    via = None
    for name, value in response.response_headers.items():
        lower = name.lower()
        if lower == "via":
            via = value
        elif lower == "content-length" and method == "HEAD":
            headers.append((name, value))  # describes the body a GET would get
        elif not is_stripped_header(name):
            headers.append((name, value))
    headers.append(("Via", f"{via}, 1.1 {ctx.authority}" if via else f"1.1 {ctx.authority}"))
    if body is not None and not bodiless:
        headers.append(("Content-Length", str(len(body))))
    try:
        head = h11.Response(status_code=status, headers=headers, reason=reason_phrase(response.status_description or standard_phrase(status)))
    except h11.LocalProtocolError as exc:
        log.warning("request %s: the listener's response head is invalid (%s)", pending.id, exc)
        _discard_body(pending, body, ctx)
        raise Refusal(500, describe(f"The listener sent an invalid response head: {exc}", conn.tracker(pending.entity.name))) from None
    conn.send(head)
    if body is not None:
        if body and not bodiless:
            conn.send(h11.Data(data=body))
        conn.send(h11.EndOfMessage())
        return status
    while True:
        item = _next_item(pending, ctx.response_timeout)
        if item is None or item[0] == "abort":
            log.info("request %s: the response body stalled or broke off; dropping the sender's connection", pending.id)
            raise ConnectionDone()
        if item[0] == "data":
            if not bodiless:
                conn.send(h11.Data(data=item[1]))
        elif item[0] == "end":
            conn.send(h11.EndOfMessage())
            return status


def _discard_body(pending: PendingRequest, body: Optional[bytes], ctx: EmulatorContext) -> None:
    if body is not None:
        return
    pending.done.set()  # the reader stops queueing; the rest of the body is dropped
