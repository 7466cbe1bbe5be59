"""Refusals, and status descriptions the way the service writes them.

Azure appends ``TrackingId:<id>, SystemTracker:<namespace>:<path>, Timestamp:<time>``
to every status description, so a user can quote it to support; clients
(ours included) parse the tracking id out of it.

A :class:`Refusal` is a value: the checks in front of an endpoint return one,
an endpoint returns one, and the connection writes it as the HTTP answer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

__all__ = ["Refusal", "describe", "new_tracking_id", "close_reason"]


@dataclass(frozen=True)
class Refusal:
    """The emulator answers a handshake or request with this status and (full) description."""

    status: int
    description: str

    def __str__(self) -> str:
        return f"{self.status} {self.description}"


def new_tracking_id() -> str:
    return str(uuid.uuid4())


def describe(text: str, system_tracker: str, tracking_id: Optional[str] = None) -> str:
    """``"<text> TrackingId:<id>, SystemTracker:<where>, Timestamp:<utc>"``."""
    stamp = datetime.now(timezone.utc).strftime("%m/%d/%Y %I:%M:%S %p")
    text = text.rstrip()
    if text and text[-1] not in ".!?":
        text += "."
    return f"{text} TrackingId:{tracking_id or new_tracking_id()}, SystemTracker:{system_tracker}, Timestamp:{stamp}"


def close_reason(text: str) -> str:
    """A close reason that fits the 123-byte limit and still carries a tracking id."""
    return f"{text} TrackingId:{new_tracking_id()}"
