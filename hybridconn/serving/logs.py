"""The error log of ``hybridconn serve``: gunicorn's line shape, or JSON, with secrets redacted.

Text lines look like gunicorn's (``[2026-12-02 10:00:00 +0000] [4242] [INFO] message``);
``--log-format json`` writes one object per line (``time``, ``level``, ``pid``,
``logger``, ``message``, ``exc_info``). Every record passes the library's
redacting filter, so a token in a third-party library's message is hidden too.
"""

from __future__ import annotations

import datetime
import json
import logging
import logging.handlers
import sys

from .._redact import RedactingFilter, install_redaction

__all__ = ["configure_error_log", "JsonFormatter", "TEXT_FORMAT"]

TEXT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
_DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc).isoformat(
                timespec="milliseconds"),
            "level": record.levelname.lower(),
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["exc_info"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(document, separators=(",", ":"))


def configure_error_log(destination: str, level: str, log_format: str) -> logging.Handler:
    """Send every log record at ``level`` or above to ``destination`` (``-``: stderr); returns the handler."""
    handler: logging.Handler
    if destination == "-":
        handler = logging.StreamHandler(sys.stderr)
    else:
        handler = logging.handlers.WatchedFileHandler(destination, encoding="utf-8")
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT, _DATE_FORMAT))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    numeric = getattr(logging, level.upper())
    root.setLevel(numeric)
    # The embedded emulator logs every request at INFO: the access log says that better.
    logging.getLogger("hybridconn.emulator").setLevel(max(numeric, logging.WARNING) if numeric > logging.DEBUG
                                                      else numeric)
    install_redaction()
    return handler
