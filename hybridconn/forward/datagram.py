"""azbridge's UDP framing (preamble mode 1), free of I/O.

Each datagram travels as ``u16 big-endian length + payload`` (the payload may
be empty), and azbridge writes each frame as one WebSocket message. Its reader
re-reads a partial frame into offset 0 (``UdpRoute.StartReceiving``), so a
sender **must** put exactly one complete frame in each message:
:func:`encode_datagram` makes that one message. The receiving side here,
:class:`DatagramReader`, is lenient: it treats the messages as a byte stream,
so a frame split across messages, or several in one, still comes out whole.
"""

from __future__ import annotations

import struct
from typing import List

from ..exceptions import ProtocolError

__all__ = ["MAX_DATAGRAM", "DatagramTooLarge", "encode_datagram", "DatagramReader", "udp_port_name"]

#: The largest payload the u16 length can announce (azbridge's limit).
MAX_DATAGRAM = 65535

_LENGTH = struct.Struct(">H")


class DatagramTooLarge(ProtocolError):
    """A datagram over :data:`MAX_DATAGRAM` bytes: azbridge's framing cannot carry it (it is dropped)."""

    def __init__(self, size: int) -> None:
        self.size = size
        super().__init__(f"a {size}-byte datagram is over the {MAX_DATAGRAM}-byte limit of azbridge's UDP framing")


def udp_port_name(port: int) -> str:
    """azbridge's default port name for UDP port ``port``: ``"5000U"``."""
    return f"{int(port)}U"


def encode_datagram(payload: bytes) -> bytes:
    """One frame, to be sent as one WebSocket message. Raises :class:`DatagramTooLarge`."""
    if len(payload) > MAX_DATAGRAM:
        raise DatagramTooLarge(len(payload))
    return _LENGTH.pack(len(payload)) + bytes(payload)


class DatagramReader:
    """Frames in, datagrams out, whatever the message boundaries."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held."""
        return len(self._buffer)

    def feed(self, data: bytes) -> List[bytes]:
        """The datagrams completed by ``data`` (often exactly one)."""
        self._buffer += data
        out: List[bytes] = []
        at = 0
        while len(self._buffer) - at >= 2:
            (length,) = _LENGTH.unpack_from(self._buffer, at)
            if len(self._buffer) - at - 2 < length:
                break
            out.append(bytes(self._buffer[at + 2:at + 2 + length]))
            at += 2 + length
        if at:
            del self._buffer[:at]
        return out
