"""Redact secrets from the log records of the libraries hybridconn drives.

Our own messages never carry a token, but websocket-client's trace
(``websocket.enableTrace``) dumps every handshake with its
``ServiceBusAuthorization`` header, and urllib3 logs each request line at
DEBUG, which holds the ``sb-hc-token`` query when ``token_in_query`` is on. A
filter on those loggers rewrites such records before any handler (the trace's
own included) sees them.
"""

from __future__ import annotations

import logging
from typing import Iterable

from .addresses import redact

__all__ = ["RedactingFilter", "install_redaction", "THIRD_PARTY_LOGGERS"]

#: The loggers that show URLs or handshake headers of relay traffic.
THIRD_PARTY_LOGGERS = ("websocket", "urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry")


class RedactingFilter(logging.Filter):
    """Replaces token, signature and key values in a record's message and traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is the handler's problem, not ours
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


def install_redaction(names: Iterable[str] = THIRD_PARTY_LOGGERS) -> None:
    """Add one :class:`RedactingFilter` to each named logger (idempotent)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactingFilter) for existing in logger.filters):
            logger.addFilter(RedactingFilter())
