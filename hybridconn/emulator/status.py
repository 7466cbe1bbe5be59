"""Status descriptions the way the service writes them, and the refusal exception.

Azure appends ``TrackingId:<id>, SystemTracker:<namespace>:<path>, Timestamp:<time>``
to every status description, so a user can quote it to support; clients
(ours included) parse the tracking id out of it.
"""

from __future__ import annotations

import re
import uuid
from http import HTTPStatus
from datetime import datetime, timezone
from typing import Optional

__all__ = ["Refusal", "describe", "new_tracking_id", "reason_phrase"]

_UNSAFE_REASON = re.compile(r"[^\t\x20-\x7e]")


def new_tracking_id() -> str:
    return str(uuid.uuid4())


def describe(text: str, system_tracker: str, tracking_id: Optional[str] = None) -> str:
    """``"<text> TrackingId:<id>, SystemTracker:<where>, Timestamp:<utc>"``."""
    stamp = datetime.now(timezone.utc).strftime("%m/%d/%Y %I:%M:%S %p")
    text = text.rstrip()
    if text and text[-1] not in ".!?":
        text += "."
    return f"{text} TrackingId:{tracking_id or new_tracking_id()}, SystemTracker:{system_tracker}, Timestamp:{stamp}"


def standard_phrase(status: int, default: str = "") -> str:
    """The standard reason phrase of ``status`` (``default`` for codes without one)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return default


def reason_phrase(text: str, limit: int = 1024) -> str:
    """A string fit for an HTTP status line (printable ASCII only)."""
    if text.isascii() and text.isprintable():  # the usual case: nothing to replace
        return text[:limit]
    return _UNSAFE_REASON.sub("?", text)[:limit]


class Refusal(Exception):
    """The emulator refuses a handshake or request with this status and (full) description."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(f"{status} {description}")
        self.status = status
        self.description = description
