"""Turning what a request handler does into exactly one response.

A crash is a 500 carrying a tracking id (never the exception text), no
handler a 501, a return value that is not a :class:`RelayedResponse` a 500,
a status a listener may not send (1xx, 502, 504) a 500. Also the handler's
view of a relayed request (:func:`relayed_request`) and the small text
responses the listener answers with itself (:func:`error_response`).
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import IO, Any, Callable, Optional

from ..addresses import split_target
from ..protocol import Request, is_printable_reason, listener_may_send, status_problem
from ..protocol import status_description as printable_description
from .._headermap import HeaderMap
from ..relayed import RelayedRequest, RelayedResponse

__all__ = [
    "call_handler",
    "error_response",
    "internal_error",
    "relayed_request",
    "remote_address",
    "remote_port",
    "status_description",
]

log = logging.getLogger(__name__)

RequestHandler = Callable[[RelayedRequest], Any]


def error_response(status: int, text: str, tracking_id: Optional[str] = None) -> RelayedResponse:
    """A small text response; ``text`` also becomes the status description."""
    reason = f"{text} (TrackingId:{tracking_id})" if tracking_id else text
    return RelayedResponse(status=status, headers={"Content-Type": "text/plain; charset=utf-8"},
                           body=reason.encode("utf-8"), reason=reason)


def internal_error(what: str, *args: Any, exc_info: bool = True, logger: logging.Logger = log) -> RelayedResponse:
    """A 500 carrying a fresh tracking id; ``what % args`` is logged with the id (and the traceback).

    The client sees only the id, which ties its answer to the log; never the exception text.
    """
    tracking_id = uuid.uuid4().hex
    # ``what`` is the caller's own %-format, never data: extending it keeps the call lazy.
    logger.error(what + " (TrackingId:%s)", *args, tracking_id, exc_info=exc_info)  # noqa: G003
    return error_response(500, "Internal Server Error", tracking_id)


def relayed_request(message: Request, body: bytes, path: str, via_rendezvous: bool,
                    stream: Optional[IO[bytes]] = None) -> RelayedRequest:
    """The handler's view of a relayed request: suffix and query split off the target.

    ``stream``, when given, is the body still arriving (``body`` is then empty).
    """
    target = message.request_target or "/"
    suffix, query = split_target(target, path)
    return RelayedRequest(id=message.id, method=message.method or "GET", target=target, path=suffix, query=query,
                          headers=HeaderMap(message.request_headers), body=body,
                          via_rendezvous=via_rendezvous, remote_address=remote_address(message.extra),
                          remote_port=remote_port(message.extra), stream=stream)


#: What an address may hold: letters, digits (``\w`` is ``str.isalnum()`` plus ``_``) and ``.:[]%-``.
_ADDRESS = re.compile(r"[\w.:\[\]%\-]+")


def remote_address(extra: Any) -> Optional[str]:
    """The sender's address from a message's ``remoteEndpoint`` (``{"address": ..., "port": ...}``), if any.

    The service sends it with accepts and requests (Microsoft's .NET listener reads it); a
    value of any other shape is ignored rather than trusted.
    """
    endpoint = extra.get("remoteEndpoint") if isinstance(extra, dict) else None
    address = endpoint.get("address") if isinstance(endpoint, dict) else None
    if not isinstance(address, str) or not address or len(address) > 64:
        return None
    return address if _ADDRESS.fullmatch(address) is not None else None


def remote_port(extra: Any) -> Optional[int]:
    """The sender's port from a message's ``remoteEndpoint``, if it is a valid port number."""
    endpoint = extra.get("remoteEndpoint") if isinstance(extra, dict) else None
    port = endpoint.get("port") if isinstance(endpoint, dict) else None
    if isinstance(port, str) and port.isdigit() and len(port) <= 5:
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        return None
    return port


def call_handler(handler: Optional[RequestHandler], request: RelayedRequest) -> RelayedResponse:
    """Run ``handler`` and always come back with a response to send."""
    if handler is None:
        log.warning("no on_request handler: answering 501 to %s %s", request.method, request.target)
        return error_response(501, "Not Implemented: this listener has no request handler")
    try:
        result = handler(request)
    except Exception:  # noqa: BLE001 - any handler failure becomes a 500
        return internal_error("request handler failed on %s %s", request.method, request.target)
    if not isinstance(result, RelayedResponse):
        return internal_error("request handler returned %s instead of a RelayedResponse for %s %s; answering 500",
                              type(result).__name__, request.method, request.target, exc_info=False)
    if not listener_may_send(result.status):
        log.error(
            "a listener may not answer %d (%s); sending 500 instead", result.status, status_problem(result.status)
        )
        return error_response(500, f"Internal Server Error (handler answered {result.status})")
    return result


def status_description(status: int, reason: Optional[str]) -> Optional[str]:
    """``reason`` if it is printable ASCII (it ends up in an HTTP status line), else the standard phrase."""
    if reason is not None and not is_printable_reason(reason):
        log.warning("a response reason with control or non-ASCII characters was replaced by the standard phrase")
    return printable_description(status, reason)
