"""Which HTTP statuses may travel where, and how their reasons are written.

A listener answers every relayed request with one final response (a 1xx is
not one). 502 and 504 are also the relay's own (no listener; the listener too
slow): the protocol article forbids them to listeners, but the service
delivers a listener's 502/504 to the sender (Microsoft's StatusCodes test,
HybridRequestTests.cs), and the sender tells the two apart by the ``Via``
header the relay adds to every relayed response. So a listener may send them. A reason phrase ends up
in an HTTP status line, so only printable ASCII (and tab) may be sent there.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Optional


#: Statuses the relay itself answers with: 502 (no listener) and 504 (no response in time);
#: a listener's own 502/504 carry ``Via``, the relay's do not.
RELAY_STATUSES = frozenset({502, 504})

_UNPRINTABLE = re.compile(r"[^\t\x20-\x7e]")


def is_relay_status(status: int) -> bool:
    """True for 502 and 504, the relay's own statuses (a listener's carry ``Via``)."""
    return status in RELAY_STATUSES


def listener_may_send(status: int) -> bool:
    """Whether a listener may answer a request with ``status``: a final 2xx-5xx (502/504 included)."""
    return 200 <= status <= 599


def status_problem(status: int) -> Optional[str]:
    """Why a listener may not answer with ``status`` (None when it may), for an error message."""
    if 100 <= status < 200:
        return f"statusCode {status} is informational, not a final response"
    if not 200 <= status <= 599:
        return f"statusCode {status} is outside 100-599"
    return None


def standard_phrase(status: int, default: str = "") -> str:
    """The standard reason phrase of ``status`` (``default`` for a code without one)."""
    return _PHRASES.get(status, default)


# A dict, not ``HTTPStatus(status)``: the enum's lookup is several Python calls, on every response.
_PHRASES = {member.value: member.phrase for member in HTTPStatus}


def is_printable_reason(text: str) -> bool:
    """True when ``text`` can go into an HTTP status line as is (printable ASCII and tab)."""
    if text.isascii() and text.isprintable():  # the usual case, without a regex
        return True
    return _UNPRINTABLE.search(text) is None


def printable_reason(text: str, limit: int = 1024) -> str:
    """``text`` made fit for a status line: each unprintable character becomes ``?``, at most ``limit`` long."""
    if text.isascii() and text.isprintable():
        return text[:limit]
    return _UNPRINTABLE.sub("?", text)[:limit]


def status_description(status: int, reason: Optional[str]) -> Optional[str]:
    """``reason`` when it is printable, else the standard phrase of ``status`` (None if it has none)."""
    if reason is None or is_printable_reason(reason):
        return reason
    return standard_phrase(status) or None
