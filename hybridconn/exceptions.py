"""The hybridconn error tree.

Every error the library raises derives from :class:`HybridConnectionError`.
Lower-layer exceptions (``websocket``, ``socket``, ``ssl``, ``requests``) are
translated once, where they cross into hybridconn, with ``raise ... from exc``.

No message built here ever contains a token, a signature or a key: callers
pass descriptions that come from the service or from our own text, and
:func:`hybridconn._redact.redact` scrubs anything from the far end before it is shown.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

from ._redact import redact

__all__ = [
    "HybridConnectionError",
    "ConfigurationError",
    "HandshakeError",
    "AuthenticationError",
    "AuthorizationError",
    "EndpointNotFoundError",
    "ListenerUnavailableError",
    "NoListenerConnectedError",
    "ConnectionRejectedError",
    "ConnectionClosed",
    "ProtocolError",
    "RelayConnectionError",
    "RelayTimeoutError",
    "error_for_status",
]


class HybridConnectionError(Exception):
    """Base class of every error raised by hybridconn."""


class ConfigurationError(HybridConnectionError, ValueError):
    """A connection string, path, key or option is invalid."""


class HandshakeError(HybridConnectionError):
    """The relay refused a WebSocket upgrade or an HTTP request.

    :ivar status_code: the HTTP status the service answered with (None if unknown).
    :ivar reason: the service's status description.
    :ivar tracking_id: the service's tracking id, when its description carried one.
    """

    def __init__(
        self,
        status_code: Optional[int] = None,
        reason: str = "",
        tracking_id: Optional[str] = None,
        message: Optional[str] = None,
    ) -> None:
        self.status_code = status_code
        # The description comes from the far end; scrub it once here so no log shows a secret.
        self.reason: str = _scrub(reason or "")
        self.tracking_id: Optional[str] = tracking_id or _find_tracking_id(self.reason)
        if message is None:
            message = self._default_message()
        else:
            message = _scrub(message)
        super().__init__(message)

    def __reduce__(self) -> Tuple[Any, ...]:
        # Exception pickling re-calls __init__ with self.args (just the message): pass ours.
        return (type(self), (self.status_code, self.reason, self.tracking_id, str(self)))

    def _default_message(self) -> str:
        parts = []
        if self.status_code is not None:
            parts.append(str(self.status_code))
        if self.reason:
            parts.append(self.reason)
        text = " ".join(parts) or "handshake failed"
        if self.tracking_id and self.tracking_id not in text:
            text += f" (TrackingId:{self.tracking_id})"
        return f"{self.summary}: {text}"

    summary = "the relay refused the handshake"


class AuthenticationError(HandshakeError):
    """401: the token is missing, malformed, invalid or expired (also close code 1008)."""

    summary = "authentication failed"


class AuthorizationError(HandshakeError):
    """403: the token is valid but lacks the right for this path and action."""

    summary = "not authorized"


class EndpointNotFoundError(HandshakeError):
    """404: the hybrid connection does not exist (or, as :class:`NoListenerConnectedError`, has no listener)."""

    summary = "endpoint not found"


class ListenerUnavailableError(HandshakeError):
    """502/503: no listener is online to take the request."""

    summary = "no listener available"


class NoListenerConnectedError(ListenerUnavailableError, EndpointNotFoundError):
    """404 "There are no listeners connected for the endpoint": no listener (none qualifies).

    Azure answers a WebSocket connect with no listener online with 404 and this text (the
    Power Automate docs call it ``NoListenerConnected``), and a sender whose
    ``Microsoft-Relay-AllowedListeners``/``DisallowedListeners`` headers leave no listener
    with 404 "None of the connected listeners meet the ... criteria". Both a
    :class:`ListenerUnavailableError` (no listener) and, for code written against the
    404, an :class:`EndpointNotFoundError`; a missing hybrid connection is a plain
    :class:`EndpointNotFoundError`.
    """

    summary = "no listener available"


class ConnectionRejectedError(HandshakeError):
    """The listener rejected the sender's connection with its own status and description."""

    summary = "the listener rejected the connection"


class ConnectionClosed(HybridConnectionError):
    """The WebSocket closed. Codes 1000 and 1001 are clean closes; others are not."""

    def __init__(self, code: Optional[int] = None, reason: str = "") -> None:
        self.code = code
        self.reason: str = _scrub(reason or "")
        reason = self.reason
        text = f"connection closed (code {code})" if code is not None else "connection closed"
        if reason:
            text += f": {reason}"
        super().__init__(text)

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (self.code, self.reason))

    @property
    def clean(self) -> bool:
        """True when the close was a normal 1000/1001 close."""
        return self.code in (1000, 1001)


class ProtocolError(HybridConnectionError):
    """A peer sent a malformed or illegal frame or control message."""


class RelayConnectionError(HybridConnectionError, ConnectionError):
    """The relay could not be reached: refused, reset, DNS, proxy or TLS failure."""


class RelayTimeoutError(HybridConnectionError, TimeoutError):
    """An operation did not complete within its deadline (also a :class:`TimeoutError`)."""


_STATUS_ERRORS = {
    401: AuthenticationError,
    403: AuthorizationError,
    404: EndpointNotFoundError,
    502: ListenerUnavailableError,
    503: ListenerUnavailableError,
}


def error_for_status(
    status_code: int, reason: str = "", tracking_id: Optional[str] = None
) -> HybridConnectionError:
    """Map a status code the *service* answered with to the matching error.

    504 becomes :class:`RelayTimeoutError`; codes without a dedicated class
    become a plain :class:`HandshakeError`.
    """
    reason = _scrub(reason or "")
    if status_code == 504:
        tid = tracking_id or _find_tracking_id(reason)
        text = f"the relay timed out waiting for the listener: 504 {reason}".rstrip()
        if tid and tid not in text:
            text += f" (TrackingId:{tid})"
        error = RelayTimeoutError(text)
        error.status_code = status_code  # type: ignore[attr-defined]
        error.reason = reason  # type: ignore[attr-defined]
        error.tracking_id = tid  # type: ignore[attr-defined]
        return error
    cls = _STATUS_ERRORS.get(status_code, HandshakeError)
    if status_code == 404 and is_no_listener_text(reason):
        cls = NoListenerConnectedError
    return cls(status_code, reason, tracking_id)


#: Lower-case fragments of the service's 404 texts that mean "no listener", not "no such hybrid
#: connection" (whose text is "Endpoint does not exist", azure-relay-dotnet RunTimeTests.cs).
_NO_LISTENER_TEXTS = ("no listeners connected", "none of the connected listeners")


def is_no_listener_text(reason: str) -> bool:
    """True when a 404's description says no listener is connected (or none qualifies)."""
    lowered = " ".join(reason.lower().split())
    return any(text in lowered for text in _NO_LISTENER_TEXTS)


def _scrub(text: str) -> str:
    return redact(text)


def _find_tracking_id(text: str) -> Optional[str]:
    """Pull ``TrackingId:xxxx`` out of a service status description, if present."""
    marker = "TrackingId:"
    start = text.find(marker)
    if start < 0:
        return None
    start += len(marker)
    end = start
    while end < len(text) and (text[end].isalnum() or text[end] in "-_"):
        end += 1
    return text[start:end] or None
