"""Refusals, and status descriptions the way the service writes them.

Azure appends ``TrackingId:<id>, SystemTracker:<namespace>:<path>, Timestamp:<time>``
to every status description, so a user can quote it to support; clients
(ours included) parse the tracking id out of it.

A :class:`Refusal` is a value: the checks in front of an endpoint return one,
an endpoint returns one, and the connection writes it as the HTTP answer.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

__all__ = [
    "Refusal", "describe", "new_tracking_id", "close_reason", "error_body", "error_code",
    "NO_LISTENERS", "NO_LISTENER_MEETS",
]

#: Azure's text when no listener is connected (``404 There are no listeners connected for the endpoint``
#: in Azure Arc and AKS logs; the Power Automate docs show it under the code ``NoListenerConnected``).
NO_LISTENERS = "There are no listeners connected for the endpoint"
#: Azure's 404 text when no connected listener passes the sender's AllowedListeners/DisallowedListeners
#: headers (azure-relay-dotnet HybridRequestTests.cs, AllowedListeners/DisallowedListeners).
NO_LISTENER_MEETS = "None of the connected listeners meet the AllowedListeners/DisallowedListeners criteria"

#: The service's error codes where they are known (``TokenMissingOrInvalid``: the 401 quoted in
#: azure-relay-dotnet #141; ``GatewayTimeout``: the 504 body in #141 and azure-relay #55); others
#: are the status's phrase in the same CamelCase.
_CODES = {400: "BadRequest", 401: "TokenMissingOrInvalid", 403: "Forbidden", 404: "EndpointNotFound",
          408: "RequestTimeout", 410: "Gone", 413: "RequestEntityTooLarge", 429: "TooManyRequests",
          500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}


@dataclass(frozen=True)
class Refusal:
    """The emulator answers a handshake or request with this status and (full) description."""

    status: int
    description: str

    def __str__(self) -> str:
        return f"{self.status} {self.description}"


def error_code(status: int) -> str:
    """The ``error.code`` of a service error body for ``status``."""
    return _CODES.get(status, "Error")


def error_body(refusal: Refusal) -> bytes:
    """The service's JSON error body: ``{"error": {"code": ..., "message": "<text> TrackingId:..."}}``."""
    return json.dumps({"error": {"code": error_code(refusal.status), "message": refusal.description}}).encode()


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
