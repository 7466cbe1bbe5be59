"""The access log: one line per HTTP request, in gunicorn's format language, or JSON.

A line is made from a :class:`~hybridconn.relayed.ResponseRecord` (the
listener's ``on_response`` hook), so the listener's own answers (a 503 while
busy or shutting down, a 413, a crash's 500) are logged too. The default
format is the Combined Log Format, as gunicorn's, followed by the relay's
request id, the duration and how the exchange travelled::

    127.0.0.1 - - [02/Dec/2026:10:00:00 +0000] "GET /hc1/users?id=7 HTTP/1.1" 200 13 "-" "curl/8.5" \\
        3f2c...-id 2ms control

Atoms (``%(name)s``): ``h`` remote address, ``l`` ``-``, ``u`` HTTP Basic user name, ``t`` time,
``r`` request line, ``m`` method, ``U`` path, ``q`` query, ``H`` protocol, ``s`` status, ``B`` bytes,
``b`` bytes or ``-``, ``f`` referer, ``a`` user agent, ``T``/``M``/``D`` duration in whole
seconds/milliseconds/microseconds, ``L`` in decimal seconds, ``p`` ``<pid>``, ``{name}i`` a request
header, and ours: ``request_id``, ``via`` (``control`` or ``rendezvous``), ``hc`` (hybrid connection).

No secret reaches a line: token, signature and key values and every ``sb-hc-*`` query value are
hidden wherever they appear (target, referer, headers), and control characters are escaped so a
header cannot forge a line.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import logging
import logging.handlers
import os
import re
import sys
from typing import Any, Dict, Mapping, Optional

from .._redact import redact
from ..relayed import ResponseRecord

__all__ = ["AccessLog", "format_line", "json_line", "clean", "secret_free"]

_RELAY_PARAM = re.compile(r"(?i)((?:^|[?&;])sb-hc-[^=&;]*=)[^&;#]*")
_UNPRINTABLE = re.compile(r'[\x00-\x1f\x7f"\\]')


def secret_free(text: Optional[str]) -> Optional[str]:
    """``text`` with token, signature and key values and every ``sb-hc-*`` query value hidden."""
    if not text:
        return None
    return _RELAY_PARAM.sub(r"\1<redacted>", redact(str(text)))


def clean(text: Optional[str]) -> str:
    """A value fit for a log line: secrets hidden, quotes and control characters escaped; ``-`` if empty."""
    hidden = secret_free(text)
    if hidden is None:
        return "-"
    return _UNPRINTABLE.sub(lambda m: "\\x%02x" % ord(m.group()), hidden)


def _basic_user(headers: Mapping[str, str]) -> Optional[str]:
    """The user name of an HTTP Basic ``Authorization`` header (never the password)."""
    value = headers.get("Authorization") or ""
    scheme, _, credentials = value.partition(" ")
    if scheme.lower() != "basic" or not credentials:
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None
    return decoded.partition(":")[0] or None


class _Atoms(dict):  # type: ignore[type-arg]
    """The atoms of one line; ``{header}i`` looked up on demand, anything unknown is ``-``."""

    def __init__(self, values: Dict[str, Any], headers: Mapping[str, str]) -> None:
        super().__init__(values)
        self._headers = headers

    def __missing__(self, key: str) -> str:
        if key.startswith("{") and key.endswith("}i"):
            wanted = key[1:-2].lower()
            return clean(next((v for k, v in self._headers.items() if k.lower() == wanted), None))
        return "-"


def _atoms(record: ResponseRecord, hybrid_connection: str) -> Dict[str, Any]:
    target = clean(record.target)
    path, _, query = target.partition("?")
    micros = int(record.duration * 1_000_000)
    when = datetime.datetime.fromtimestamp(record.started, datetime.timezone.utc).astimezone()
    headers = record.headers
    return {
        "h": clean(record.remote_address), "l": "-", "u": clean(_basic_user(headers)),
        "t": when.strftime("[%d/%b/%Y:%H:%M:%S %z]"), "r": f"{clean(record.method)} {target} HTTP/1.1",
        "m": clean(record.method), "U": path, "q": query or "-", "H": "HTTP/1.1", "s": record.status,
        "B": record.body_bytes, "b": record.body_bytes or "-", "f": clean(headers.get("Referer")),
        "a": clean(headers.get("User-Agent")), "T": micros // 1_000_000, "M": micros // 1000, "D": micros,
        "L": f"{record.duration:.6f}", "p": f"<{os.getpid()}>", "request_id": clean(record.request_id),
        "via": "rendezvous" if record.via_rendezvous else "control", "hc": clean(hybrid_connection),
    }


def format_line(record: ResponseRecord, fmt: str, hybrid_connection: str = "") -> str:
    """One access-log line in ``fmt`` (gunicorn's atoms, see the module docstring)."""
    return fmt % _Atoms(_atoms(record, hybrid_connection), record.headers)


def json_line(record: ResponseRecord, hybrid_connection: str = "") -> str:
    """One access-log line as a JSON object, for log shippers."""
    when = datetime.datetime.fromtimestamp(record.started, datetime.timezone.utc)
    headers = record.headers
    document = {
        "time": when.isoformat(timespec="milliseconds"), "request_id": record.request_id,
        "remote_addr": record.remote_address, "method": record.method, "target": secret_free(record.target),
        "status": record.status, "bytes": record.body_bytes, "duration_ms": round(record.duration * 1000, 3),
        "via": "rendezvous" if record.via_rendezvous else "control", "referer": secret_free(headers.get("Referer")),
        "user_agent": secret_free(headers.get("User-Agent")), "hybrid_connection": hybrid_connection,
        "pid": os.getpid(), "delivered": record.delivered,
    }
    return json.dumps(document, separators=(",", ":"))


class AccessLog:
    """Writes one line per record to stdout (``-``) or a file (reopened when log rotation moves it).

    :param destination: ``-`` or a path.
    :param fmt: the line format, or None for JSON lines.
    """

    def __init__(self, destination: str, fmt: Optional[str], hybrid_connection: str) -> None:
        self.fmt = fmt
        self.hybrid_connection = hybrid_connection
        self._logger = logging.getLogger("hybridconn.serving.access")
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        handler: logging.Handler
        if destination == "-":
            handler = logging.StreamHandler(sys.stdout)
        else:
            handler = logging.handlers.WatchedFileHandler(destination, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._handler = handler
        self._logger.addHandler(handler)

    def __call__(self, record: ResponseRecord) -> None:
        if self.fmt is None:
            line = json_line(record, self.hybrid_connection)
        else:
            line = format_line(record, self.fmt, self.hybrid_connection)
        self._logger.info("%s", line)

    def close(self) -> None:
        self._logger.removeHandler(self._handler)
        self._handler.close()
