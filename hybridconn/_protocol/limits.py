"""The service's numbers: what fits on the control channel, how long it waits, how many listeners.

:func:`fits_control_channel` is the one rule for choosing the control channel
over a rendezvous socket, on both sides: the listener asks it for a
response, the relay for a request.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Optional, Tuple, Union


#: Largest body (request or response) that may travel on the control channel, inclusive.
CONTROL_CHANNEL_BODY_LIMIT = 65_536
#: Largest total of HTTP header metadata the control channel carries.
HEADER_METADATA_LIMIT = 32 * 1024
#: Seconds the service waits for a listener's response before answering 504.
RESPONSE_DEADLINE = 60.0
#: Seconds an accept (rendezvous) address stays valid.
ACCEPT_WINDOW = 30.0
#: Concurrent listeners the service allows on one hybrid connection.
MAX_LISTENERS = 25
#: Largest WebSocket fragment either side writes when it splits a streamed body.
FRAGMENT_SIZE = 64 * 1024

#: The longest message a relayed WebSocket takes by default (the sender's ``connect()`` and the
#: listener's accepted connections; ``max_message_size=`` changes it, None lifts it). A longer one
#: closes the connection with 1009 (RFC 6455) before it is buffered. 16 MiB: relayed WebSockets
#: carry application traffic (files, tunnelled streams), so more room than websockets' 1 MiB or
#: aiohttp's 4 MiB, while one message can still never cost more than ~32 MiB of a peer's memory.
MAX_MESSAGE_SIZE = 16 * 1024 * 1024
#: The longest message on a control channel, both ends: its messages are JSON (headers within
#: 32 kB) and bodies within 64 kB, so 1 MiB is ample and a runaway message is cut early.
CONTROL_MESSAGE_SIZE = 1024 * 1024

HeaderText = Union[str, bytes]
HeaderItems = Union[Mapping[str, str], Iterable[Tuple[HeaderText, HeaderText]]]


def header_metadata_size(headers: HeaderItems) -> int:
    """Bytes of header metadata as counted against :data:`HEADER_METADATA_LIMIT`.

    Each header counts its name and value plus 4 (``": "`` and CRLF). Takes a
    mapping, or ``(name, value)`` pairs of text or of raw bytes (as h11 gives them).
    """
    # type() first: a dict (nearly always) skips typing.Mapping's isinstance, several Python calls deep
    items = headers.items() if type(headers) is dict or isinstance(headers, Mapping) else headers
    total = 0
    for name, value in items:
        # Raw bytes, and ASCII text (nearly every header), are one byte per character: skip the
        # encode. Inline, not a helper: this runs for every header of every relayed request.
        total += (len(name) if type(name) is not str or name.isascii() else len(name.encode("utf-8"))) + 4
        total += len(value) if type(value) is not str or value.isascii() else len(value.encode("utf-8"))
    return total


def fits_control_channel(body_length: int, headers: Optional[HeaderItems] = None) -> bool:
    """Whether a message with this body (and headers) may travel on the control channel.

    The body must be at most :data:`CONTROL_CHANNEL_BODY_LIMIT` bytes and the
    headers at most :data:`HEADER_METADATA_LIMIT` bytes of metadata.
    """
    if body_length > CONTROL_CHANNEL_BODY_LIMIT:
        return False
    return headers is None or header_metadata_size(headers) <= HEADER_METADATA_LIMIT
