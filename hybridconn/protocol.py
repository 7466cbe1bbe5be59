"""Sans-IO core of the Hybrid Connections protocol: every wire rule both sides use.

Nothing here touches a socket, a thread or a WebSocket library: the listener
and the emulator both feed frames in and take events out, the way h11 serves
both ends of an HTTP connection. Remote input never raises out of
:class:`FrameAssembler`; it becomes a :class:`ProtocolViolation` event that the
caller logs, and the assembler is ready for the next message.

Import every protocol name from this module (``from hybridconn.protocol
import Request``). They are written, one concern per file, in the private
package ``hybridconn/_protocol/``:

* ``messages.py`` - the control messages (``accept``, ``request``,
  ``response``, ``renewToken``) as frozen dataclasses, and their JSON.
* ``pairing.py`` - a text frame paired with the binary frames of its body,
  collected or streamed (:class:`FrameAssembler`).
* ``limits.py`` - the 64 kB / 32 kB control-channel rule, deadlines, counts.
* ``status.py`` - which statuses a listener may send; reason phrases.
* ``headers.py`` - headers the relay strips; header lists.
"""

from __future__ import annotations

from .exceptions import ProtocolError  # noqa: F401 - raised by parse_message; importable from here as before
from ._protocol.headers import STRIPPED_HEADERS, header_value, is_stripped_header, parse_subprotocols, strip_hop_headers
from ._protocol.limits import (
    ACCEPT_WINDOW,
    CONTROL_CHANNEL_BODY_LIMIT,
    CONTROL_MESSAGE_SIZE,
    FRAGMENT_SIZE,
    MAX_MESSAGE_SIZE,
    HEADER_METADATA_LIMIT,
    MAX_LISTENERS,
    RESPONSE_DEADLINE,
    fits_control_channel,
    header_metadata_size,
)
from ._protocol.messages import (
    Accept,
    ControlMessage,
    RenewToken,
    Request,
    Response,
    address_only_request,
    parse_message,
    serialize_message,
)
from ._protocol.pairing import (
    AssemblerEvent,
    BodyChunk,
    BodyEnd,
    FrameAssembler,
    MessageHead,
    MessageReceived,
    ProtocolViolation,
    StreamEvent,
    StreamingFrameAssembler,
    ViolationCause,
)
from ._protocol.status import (
    RELAY_STATUSES,
    is_printable_reason,
    is_relay_status,
    listener_may_send,
    printable_reason,
    standard_phrase,
    status_description,
    status_problem,
)

__all__ = [
    "CONTROL_CHANNEL_BODY_LIMIT",
    "HEADER_METADATA_LIMIT",
    "RESPONSE_DEADLINE",
    "ACCEPT_WINDOW",
    "MAX_LISTENERS",
    "FRAGMENT_SIZE",
    "MAX_MESSAGE_SIZE",
    "CONTROL_MESSAGE_SIZE",
    "STRIPPED_HEADERS",
    "RELAY_STATUSES",
    "Accept",
    "Request",
    "Response",
    "RenewToken",
    "ControlMessage",
    "parse_message",
    "serialize_message",
    "address_only_request",
    "strip_hop_headers",
    "is_stripped_header",
    "header_value",
    "parse_subprotocols",
    "header_metadata_size",
    "fits_control_channel",
    "is_relay_status",
    "listener_may_send",
    "status_problem",
    "standard_phrase",
    "is_printable_reason",
    "printable_reason",
    "status_description",
    "MessageReceived",
    "MessageHead",
    "BodyChunk",
    "BodyEnd",
    "ViolationCause",
    "ProtocolViolation",
    "AssemblerEvent",
    "StreamEvent",
    "FrameAssembler",
    "StreamingFrameAssembler",
]
