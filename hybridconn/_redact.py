"""Hiding secrets: in text we build, and in the log records of the libraries we drive.

A leaf module (it imports nothing of hybridconn), so every other module can
use it: exceptions scrub the descriptions they carry, addresses and the HTTP
boundary scrub URLs, and :func:`install_redaction` puts a filter on the
third-party loggers that show handshakes and request lines.

Our own messages never carry a token, but websocket-client's trace
(``websocket.enableTrace``) dumps every handshake with its
``ServiceBusAuthorization`` header, and urllib3 logs each request line at
DEBUG, which holds the ``sb-hc-token`` query when ``token_in_query`` is on.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:  # pragma: no cover
    import logging

__all__ = ["redact", "redact_url", "RedactingFilter", "install_redaction", "THIRD_PARTY_LOGGERS"]

# Also the percent-encoded forms ("sig%3D...", "SharedAccessSignature%20..."): a token nested
# in another URL's query is encoded once more.
_SECRET_PARAMS = re.compile(
    r"(?i)((?:sb-hc-token|sig|signature|sharedaccesskey|sharedaccesssignature|client_secret|client_assertion|"
    r"access_token)(?:=|%3D))[^&;\s\"']*"
)
_SAS_HEADER = re.compile(r"(?i)(SharedAccessSignature(?:\s+|%20|\+))\S+")
# An Entra ID (JWT) access token after "Bearer": three base64url parts.
_BEARER = re.compile(r"(?i)(Bearer(?:\s+|%20|\+))[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")
# A bare JWT, as Microsoft's clients send Entra ID tokens in ServiceBusAuthorization and renewToken:
# its header is base64url JSON, so it starts with "eyJ" ('{"'). Client assertions are JWTs too.
_JWT = re.compile(r"eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*")

#: The loggers that show URLs or handshake headers of relay traffic.
THIRD_PARTY_LOGGERS = ("websocket", "urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry")


def redact(text: str) -> str:
    """Hide token, signature and key values anywhere in a piece of text."""
    if not text:
        return text
    text = _SAS_HEADER.sub(r"\1<redacted>", text)
    text = _BEARER.sub(r"\1<redacted>", text)
    text = _JWT.sub("<redacted>", text)
    return _SECRET_PARAMS.sub(r"\1<redacted>", text)


def redact_url(url: str) -> str:
    """A URL fit for logs: ``sb-hc-token`` and ``sig`` values hidden."""
    return redact(url)


class RedactingFilter:
    """Replaces token, signature and key values in a record's message and traceback text.

    A plain object with a ``filter`` method, which is all ``logging`` asks of a filter:
    importing :mod:`logging` here would pull threading into protocol.py, which must stay free of it.
    """

    def filter(self, record: "logging.LogRecord") -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is the handler's problem, not ours
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            import logging

            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


def install_redaction(names: Iterable[str] = THIRD_PARTY_LOGGERS) -> None:
    """Add one :class:`RedactingFilter` to each named logger (idempotent)."""
    import logging

    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactingFilter) for existing in logger.filters):
            logger.addFilter(RedactingFilter())
