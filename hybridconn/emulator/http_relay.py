"""Relayed HTTP: a sender's request becomes a ``request`` message, the listener's ``response`` an HTTP response.

A request whose body is known and at most 64 kB (headers within 32 kB) goes
over the control channel with its body as one binary message. A larger or
chunked one goes address-only; the listener connects to the address and gets
the whole request there, body streamed. The response is written back with a
``Via`` header, and with ``Content-Length`` only when the whole body is known
(otherwise h11 chunks it). No listener -> 502; no response in time -> 504.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import List, Optional, Tuple, Union

import h11

from ..addresses import rendezvous_address, strip_relay_query
from ..protocol import (
    Request,
    Response,
    address_only_request,
    fits_control_channel,
    is_stripped_header,
    printable_reason,
    serialize_message,
    standard_phrase,
    strip_hop_headers,
)
from .context import raw_headers
from .exchange import (
    Aborted,
    Linked,
    ListenerLeft,
    PendingRequest,
    RendezvousLink,
    RequestEvent,
    ResponseData,
    ResponseEnd,
    ResponseReady,
    ResponseStarted,
)
from .gate import admit, forwarded_headers, listener_filter, optional_int, pick_for
from .http_conn import ConnectionDone, HttpConnection, Incoming
from .keys import keyed_id, mint_secret
from .status import Refusal

__all__ = ["serve_http"]

log: logging.Logger = logging.getLogger(__name__)

_NO_BODY_STATUS = (204, 304)

#: What relaying ends in: the status written to the sender, or a refusal to write instead.
Outcome = Union[int, Refusal]


def serve_http(incoming: Incoming) -> bool:
    """Relay one request; True to keep the sender's connection open."""
    conn = incoming.conn
    started = time.monotonic()
    request_id = str(uuid.uuid4())
    method = incoming.request.method.decode("ascii", "replace")
    status = 0
    try:
        outcome = _relay_counted(incoming, request_id, method)
        if isinstance(outcome, Refusal):
            status = outcome.status
            drained = conn.finish_request_body()
            conn.refuse(outcome, close=not drained)
            return drained
        status = outcome
        return True
    finally:
        if log.isEnabledFor(logging.INFO):  # one line per request: build its arguments only when shown
            log.info(
                "request %s %s %s -> %s (%.1f ms)", request_id, method, "/" + incoming.target.path.lstrip("/"),
                status or "dropped", (time.monotonic() - started) * 1000,
            )


def _relay_counted(incoming: Incoming, request_id: str, method: str) -> Outcome:
    """:func:`_relay`, counting a request whose body streams to a listener against its client's
    ``max_uploads_per_client`` (each holds one of the listener's rendezvous sockets while it lasts)."""
    conn, limit = incoming.conn, incoming.ctx.limits.max_request_body
    declared = optional_int(incoming.headers.get("content-length"))
    if limit is not None and declared is not None and declared > limit:
        log.info("request %s: declared body of %d bytes is over the %d-byte limit; 413", request_id, declared, limit)
        return incoming.refusal(413, f"The request body is larger than {limit} bytes")
    if not _streams_body(incoming) or (conn.link is not None and conn.link.alive):
        return _relay(incoming, request_id, method)  # no new rendezvous socket needed
    client = conn.peer[0]
    if not incoming.ctx.uploads.acquire(client):
        cap = incoming.ctx.uploads.cap
        log.info("request %s: %s already has %d uploads in flight; refusing another", request_id, client, cap)
        return incoming.refusal(503, f"Too many uploads from this client at once (at most {cap})")
    try:
        return _relay(incoming, request_id, method)
    finally:
        incoming.ctx.uploads.release(client)


def _streams_body(incoming: Incoming) -> bool:
    """True when the request's body is too large (or chunked) for the control channel."""
    if "chunked" in incoming.headers.get("transfer-encoding", "").lower():
        return True
    return not fits_control_channel(optional_int(incoming.headers.get("content-length")) or 0, {})


def _relay(incoming: Incoming, request_id: str, method: str) -> Outcome:
    conn, ctx, target = incoming.conn, incoming.ctx, incoming.target
    admitted = admit(incoming, "Send")
    if isinstance(admitted, Refusal):
        return admitted
    entity, suffix = admitted.entity, admitted.suffix
    raw = raw_headers(incoming.request.headers.raw_items())
    forward = strip_hop_headers(forwarded_headers(raw, admitted.source, drop=("Expect",)))
    if ctx.fidelity.request_host == "forward":  # the reading of Microsoft's example and samples
        forward.update((name, value) for name, value in raw.items() if name.lower() == "host")
    query = strip_relay_query(target.query)
    conn.continue_if_expected()
    chunked = "chunked" in incoming.headers.get("transfer-encoding", "").lower()
    small = not chunked and fits_control_channel(optional_int(incoming.headers.get("content-length")) or 0, forward)
    link = conn.link if conn.link is not None and conn.link.alive else None
    channel = None
    if link is None:
        picked = pick_for(incoming, entity, ctx.fidelity.no_listener_status)
        if isinstance(picked, Refusal):
            return picked
        channel = picked
        secret = mint_secret()
        address = rendezvous_address(
            channel.base_url, entity.name, action="request", id=keyed_id(request_id, secret), suffix=suffix,
            query=target.query,
        )
    else:
        address, secret = link.address, ""  # the socket exists: its address was already used
    message = Request(
        address=address, id=request_id, method=method, request_target=target.raw_path + (f"?{query}" if query else ""),
        request_headers=forward, extra={"remoteEndpoint": {"address": conn.peer[0], "port": conn.peer[1]}},
    )
    pending = PendingRequest(entity, request_id, address, conn, channel, secret=secret)
    ctx.registry.add_request(pending)
    try:
        if link is not None:
            pending.linked = True
            _send_over_link(conn, link, pending, message, small)
            return _answer(incoming, pending, message, small, method, request_sent=True)
        assert channel is not None  # no rendezvous link: a listener was picked above
        if not small:
            # address-only: the listener fetches the whole request over the rendezvous socket
            channel.send(address_only_request(address, request_id))
            return _answer(incoming, pending, message, small, method, request_sent=False)
        body = _read_body(conn)
        text, tried = serialize_message(_announcing(message, bool(body))), []
        while not channel.send(text, body or None):
            # The channel closed between choosing it and sending: nobody saw the request, so
            # another listener may take it.
            tried.append(channel)
            channel = ctx.registry.pick_listener(entity, exclude=tried, only=listener_filter(incoming))
            if channel is None:
                return incoming.refusal(502, "The listener's control channel closed", entity.name)
            pending.channel = channel
        return _answer(incoming, pending, message, small, method, request_sent=True)
    finally:
        pending.done.set()
        ctx.registry.pop_request(request_id)
        if conn.link is not None and conn.link.current is pending:
            conn.link.current = None


def _announcing(message: Request, has_body: bool) -> Request:
    """``message`` with its ``body`` flag set (built directly: this runs for every relayed request)."""
    if message.has_body == has_body:
        return message
    return Request(
        address=message.address,
        id=message.id,
        method=message.method,
        request_target=message.request_target,
        request_headers=message.request_headers,
        has_body=has_body,
        extra=message.extra,
    )


def _read_body(conn: HttpConnection) -> bytes:
    chunks: List[bytes] = []
    while True:
        event = conn.next_body_event()
        if isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            return b"".join(chunks)
        else:
            raise ConnectionDone()


def _send_over_link(
    conn: HttpConnection, link: RendezvousLink, pending: PendingRequest, message: Request, small: bool
) -> None:
    """Send the request (and its body as it arrives) over ``link``.

    The listener may answer before the body's end (413 for a declared size over its limit, 503 when
    busy) and close the socket: that shuts our reading side (``drop_after_response``), and the
    answer is then written to the sender instead of dropping it - the refused body is never waited for.
    """
    try:
        ok = _forward_over_link(conn, link, pending, message, small)
    except (ConnectionDone, h11.RemoteProtocolError):
        if not conn.drop_requested.is_set():
            raise  # the sender went away or broke its body
        ok = True  # the listener closed the link: its answer (or the abort) is on the way
    if not ok and not conn.drop_requested.is_set():
        raise ConnectionDone()  # the rendezvous socket is gone: the sender's connection goes too


def _forward_over_link(
    conn: HttpConnection, link: RendezvousLink, pending: PendingRequest, message: Request, small: bool
) -> bool:
    if small:
        body = _read_body(conn)
        return link.send_request(pending, _announcing(message, bool(body)), body)
    first = conn.next_body_event()
    if isinstance(first, h11.EndOfMessage):
        return link.send_request(pending, _announcing(message, False), None)
    ok = link.start_streamed_request(pending, _announcing(message, True))
    event = first
    while ok:
        if isinstance(event, h11.Data):
            if event.data:
                ok = link.send_body(bytes(event.data), False)
        elif isinstance(event, h11.EndOfMessage):
            return link.send_body(b"", True)
        else:
            raise ConnectionDone()
        if ok:
            event = conn.next_body_event()
    return ok


def _answer(
    incoming: Incoming, pending: PendingRequest, message: Request, small: bool, method: str, request_sent: bool
) -> Outcome:
    """Wait for the outcome and write it to the sender; returns the status sent."""
    timeout = incoming.ctx.response_timeout
    deadline = time.monotonic() + timeout
    left: Optional[ListenerLeft] = None  # the listener left; it has a grace period to answer by rendezvous
    left_until = deadline
    while True:
        event = _next_event(pending, min(deadline, left_until) - time.monotonic())
        if event is None:
            pending.answered = True
            if left is not None:
                log.info("request %s: the listener left without answering", pending.id)
                return left.refusal
            log.info("request %s: no response within %g s", pending.id, timeout)
            text = "The request was routed to the listener but the listener did not respond in the required time"
            return incoming.refusal(504, text, pending.entity.name)
        if isinstance(event, ListenerLeft):
            left, left_until = event, time.monotonic() + event.grace
        elif isinstance(event, Linked):
            left, left_until = None, deadline
            if not request_sent:  # address-only: the whole request goes over the new socket
                request_sent = True
                _send_over_link(incoming.conn, event.link, pending, message, small)
                deadline = time.monotonic() + timeout
        elif isinstance(event, Refusal):
            return event
        elif isinstance(event, Aborted):
            log.info("request %s: dropping the sender's connection: %s", pending.id, event.why)
            raise ConnectionDone()
        elif isinstance(event, ResponseReady):
            return _write_response(incoming, pending, event.response, event.body, method)
        elif isinstance(event, ResponseStarted):
            return _write_response(incoming, pending, event.response, None, method)


def _next_event(pending: PendingRequest, timeout: float) -> Optional[RequestEvent]:
    return pending.get(timeout) if timeout > 0 else None


def _write_response(
    incoming: Incoming, pending: PendingRequest, response: Response, body: Optional[bytes], method: str
) -> Outcome:
    """Write the response head (and a complete body); a streamed body follows from the queue."""
    conn, status = incoming.conn, response.status_code
    bodiless = method == "HEAD" or status in _NO_BODY_STATUS
    headers = _response_headers(response, incoming.ctx.authority, method)
    if body is not None and not bodiless:
        headers.append(("Content-Length", str(len(body))))
    if conn.drop_requested.is_set() or conn.h11.their_state is not h11.DONE:
        # The sender's body is not all read (answered early: RFC 7230 section 6.6 says close), or the
        # listener already dropped the rendezvous socket this connection is bound to: say so, so the
        # sender does not send its next request on a connection about to close.
        headers.append(("Connection", "close"))
    reason = printable_reason(response.status_description or standard_phrase(status))
    try:
        head = h11.Response(status_code=status, headers=_latin1(headers), reason=reason)
    except (h11.LocalProtocolError, UnicodeEncodeError) as exc:
        log.warning("request %s: the listener's response head is invalid (%s)", pending.id, exc)
        if body is None:
            pending.done.set()  # the reader stops queueing; the rest of the body is dropped
        return incoming.refusal(500, f"The listener sent an invalid response head: {exc}", pending.entity.name)
    if body is not None:  # one write for the whole response
        if body and not bodiless:
            conn.send(head, h11.Data(data=body), h11.EndOfMessage())
        else:
            conn.send(head, h11.EndOfMessage())
        return status
    conn.send(head)
    _stream_body(conn, pending, incoming.ctx.response_timeout, bodiless)
    return status


def _latin1(headers: List[Tuple[str, str]]) -> List[Tuple[bytes, bytes]]:
    """Header values as latin-1 bytes, as HTTP/1.1 and PEP 3333 carry them (h11 would take ASCII only):
    ``filename="café.txt"`` goes through; a character beyond latin-1 raises UnicodeEncodeError."""
    return [(name.encode("ascii"), value.encode("latin-1")) for name, value in headers]


def _response_headers(response: Response, authority: str, method: str) -> List[Tuple[str, str]]:
    """The listener's headers minus the stripped ones, with our hop added to ``Via``."""
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
    headers.append(("Via", f"{via}, 1.1 {authority}" if via else f"1.1 {authority}"))
    return headers


def _stream_body(conn: HttpConnection, pending: PendingRequest, timeout: float, bodiless: bool) -> None:
    while True:
        event = _next_event(pending, timeout)
        if event is None or isinstance(event, Aborted):
            log.info("request %s: the response body stalled or broke off; dropping the sender's connection", pending.id)
            raise ConnectionDone()
        if isinstance(event, ResponseData):
            if not bodiless:
                conn.send(h11.Data(data=event.data))
        elif isinstance(event, ResponseEnd):
            conn.send(h11.EndOfMessage())
            return
