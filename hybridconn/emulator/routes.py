"""Where each request goes: plain HTTP to the relayed-HTTP endpoint, ``/$hc/`` upgrades by ``sb-hc-action``.

=========================  ========================================  =======================
``sb-hc-action``           who comes                                 endpoint
=========================  ========================================  =======================
``listen``                 a listener opens its control channel      :func:`.control.serve_listen`
``connect`` (or none)      a sender opens a WebSocket                :func:`.relay.serve_connect`
``accept``                 a listener accepts (or rejects) a sender  :func:`.relay.serve_accept`
``request``                a listener opens a request's rendezvous   :func:`.rendezvous.serve_rendezvous`
(no ``/$hc/``)             an HTTP request for a listener            :func:`.http_relay.serve_http`
=========================  ========================================  =======================
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Union

import h11

from ..protocol import HEADER_METADATA_LIMIT, header_metadata_size
from .context import headers_dict, parse_target
from .control import serve_listen
from .http_conn import HttpConnection, Incoming
from .http_relay import serve_http
from .relay import serve_accept, serve_connect
from .rendezvous import serve_rendezvous
from .status import Refusal, describe

__all__ = ["route", "WEBSOCKET_ENDPOINTS"]

#: A WebSocket endpoint: serves the upgrade to its end, or returns a refusal to answer instead.
WebSocketEndpoint = Callable[[Incoming], Optional[Refusal]]

WEBSOCKET_ENDPOINTS: Dict[str, WebSocketEndpoint] = {
    "listen": serve_listen,
    "connect": serve_connect,
    "accept": serve_accept,
    "request": serve_rendezvous,
}


def route(conn: HttpConnection, request: h11.Request) -> Union[bool, Refusal]:
    """Serve one request: True to keep the connection open, False to close it, or a refusal to answer."""
    # h11 only bounds a header section that arrives in pieces; check a whole one here.
    if len(request.target) + header_metadata_size(request.headers.raw_items()) > HEADER_METADATA_LIMIT:
        return Refusal(431, describe("Request header section too large", conn.ctx.authority))
    if request.method == b"CONNECT":
        return Refusal(405, describe("The CONNECT method is not supported", conn.ctx.authority))
    incoming = Incoming(
        conn, request, parse_target(request.target.decode("latin-1")), headers_dict(request.headers.raw_items())
    )
    if not incoming.target.hc:
        return serve_http(incoming)
    # WebSocket endpoints: read the (empty) request body up to the upgrade point.
    conn.finish_request_body()
    refusal = _check_upgrade(incoming)
    if refusal is not None:
        return refusal
    # No sb-hc-action is a connect: Microsoft's tests open raw senders on wss://host/$hc/path.
    action = (incoming.target.param("sb-hc-action") or "connect").lower()
    endpoint = WEBSOCKET_ENDPOINTS.get(action)
    if endpoint is None:
        return incoming.refusal(400, f"Unrecognized sb-hc-action {action!r}")
    refusal = endpoint(incoming)
    return refusal if refusal is not None else False


def _check_upgrade(incoming: Incoming) -> Optional[Refusal]:
    """RFC 6455 4.2.1: a GET, HTTP/1.1, ``Connection: Upgrade`` and ``Upgrade: websocket`` - else no 101."""
    headers, request = incoming.headers, incoming.request
    connection = {token.strip() for token in headers.get("connection", "").lower().split(",")}
    if (
        "websocket" not in headers.get("upgrade", "").lower()
        or "upgrade" not in connection
        or request.method != b"GET"
        or request.http_version != b"1.1"
    ):
        return incoming.refusal(400, "This endpoint requires a WebSocket upgrade")
    if headers.get("sec-websocket-version", "").strip() != "13" or not headers.get("sec-websocket-key"):
        return incoming.refusal(
            400, "Invalid WebSocket handshake: Sec-WebSocket-Version 13 and Sec-WebSocket-Key are required"
        )
    return None
