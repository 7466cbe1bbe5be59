"""Sans-IO codec for azbridge's v1.0 connection preamble.

Azure Relay Bridge (azbridge) opens one hybrid connection WebSocket per
forwarded TCP connection and says which logical port it wants *in band*,
before any payload::

    sender   -> 01 00 mode N port_name[N]      mode 0 = stream, 1 = datagram
    listener <- 01 00 mode                     accepted; payload follows
                00 00 00                       version or mode not understood
                00 00 01                       the port is datagram, mode was not 1
                00 00 FF                       the port is stream, mode was 1
                (close, no reply)              unknown port name

Both sides must treat the socket as a byte stream: the C# sender writes the
4-byte header and the name as two messages, the Rust port writes one, and
nothing stops a relay or a peer from splitting them further. The parsers here
take bytes as they arrive and keep any bytes past the preamble.

This module does no I/O and imports no socket or threading code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Sequence

from ..exceptions import ConfigurationError, ProtocolError

__all__ = [
    "VERSION_MAJOR",
    "VERSION_MINOR",
    "MODE_STREAM",
    "MODE_DATAGRAM",
    "REPLY_LENGTH",
    "REPLY_UNSUPPORTED",
    "REPLY_NOT_DATAGRAM",
    "REPLY_NOT_STREAM",
    "PORT_NAME_PATTERN",
    "Preamble",
    "PreambleError",
    "UnsupportedPreamble",
    "PreambleRejected",
    "PreambleParser",
    "ReplyParser",
    "encode_preamble",
    "accept_reply",
    "reply_for",
    "check_reply",
    "match_port_name",
    "validate_port_name",
]

VERSION_MAJOR = 1
VERSION_MINOR = 0
MODE_STREAM = 0
MODE_DATAGRAM = 1
_MODES = (MODE_STREAM, MODE_DATAGRAM)

#: The listener's reply is always exactly this many bytes.
REPLY_LENGTH = 3
#: Version or mode not understood.
REPLY_UNSUPPORTED = b"\x00\x00\x00"
#: The matched forwarder is datagram (UDP) but the sender asked for another mode.
REPLY_NOT_DATAGRAM = b"\x00\x00\x01"
#: The matched forwarder is stream (TCP) but the sender asked for datagram mode.
REPLY_NOT_STREAM = b"\x00\x00\xff"

#: azbridge's rule for explicit port names (Constants.cs).
PORT_NAME_PATTERN = re.compile(r"^[0-9A-Za-z/_\-.]+$")
_MAX_NAME_BYTES = 255  # the length is one byte

# .NET int.TryParse with NumberStyles.Integer: optional white space, an
# optional sign, ASCII digits only, and the value must fit an Int32.
_CSHARP_INT = re.compile(r"^[ \t\n\v\f\r]*[+-]?([0-9]+)[ \t\n\v\f\r]*$")

_REPLY_TEXT = {
    REPLY_UNSUPPORTED: "the listener does not understand this preamble version or mode",
    REPLY_NOT_DATAGRAM: "the remote port is datagram (UDP) but a stream was requested",
    REPLY_NOT_STREAM: "the remote port is stream (TCP) but a datagram route was requested",
}


class PreambleError(ProtocolError):
    """The preamble exchange failed."""


class UnsupportedPreamble(PreambleError):
    """The sender's preamble has a version or mode this listener does not speak.

    :ivar reply: the bytes azbridge answers with (``00 00 00``).
    """

    reply = REPLY_UNSUPPORTED

    def __init__(self, major: int, minor: int, mode: int) -> None:
        self.major: int = major
        self.minor: int = minor
        self.mode: int = mode
        super().__init__(f"unsupported preamble: version {major}.{minor}, mode {mode}")


class PreambleRejected(PreambleError):
    """The listener did not accept the preamble (or closed before replying).

    :ivar reply: the 3 reply bytes, or ``b""`` when the listener closed without a
        reply (azbridge's answer to an unknown port name).
    """

    def __init__(self, reply: bytes, message: Optional[str] = None) -> None:
        self.reply: bytes = bytes(reply)
        if message is None:
            message = _REPLY_TEXT.get(self.reply) or f"unexpected preamble reply {self.reply.hex(' ')}"
        super().__init__(message)


@dataclass(frozen=True)
class Preamble:
    """A parsed sender preamble."""

    port_name: str
    mode: int = MODE_STREAM
    major: int = VERSION_MAJOR
    minor: int = VERSION_MINOR


def validate_port_name(port_name: str) -> str:
    """Return ``port_name`` if azbridge would accept it as a port name, else raise ConfigurationError."""
    if not PORT_NAME_PATTERN.match(port_name):
        raise ConfigurationError(f"invalid port name {port_name!r}: use letters, digits and / _ - .")
    if len(port_name.encode("utf-8")) > _MAX_NAME_BYTES:
        raise ConfigurationError(f"port name is longer than {_MAX_NAME_BYTES} bytes")
    return port_name


def encode_preamble(port_name: str, mode: int = MODE_STREAM) -> bytes:
    """The sender's preamble: ``01 00 mode N name``.

    Names over 255 bytes are refused (C# azbridge would silently truncate the
    length byte and corrupt the stream).
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be {MODE_STREAM} or {MODE_DATAGRAM}, not {mode!r}")
    name = port_name.encode("utf-8")
    if len(name) > _MAX_NAME_BYTES:
        raise ConfigurationError(f"port name is longer than {_MAX_NAME_BYTES} bytes")
    return bytes((VERSION_MAJOR, VERSION_MINOR, mode, len(name))) + name


def accept_reply(mode: int) -> bytes:
    """The listener's success reply: ``01 00 mode``."""
    return bytes((VERSION_MAJOR, VERSION_MINOR, mode))


def reply_for(preamble: Preamble, forwarder_mode: int) -> bytes:
    """The reply to a preamble whose port name matched a forwarder of ``forwarder_mode``."""
    if forwarder_mode == MODE_DATAGRAM and preamble.mode != MODE_DATAGRAM:
        return REPLY_NOT_DATAGRAM
    if forwarder_mode != MODE_DATAGRAM and preamble.mode == MODE_DATAGRAM:
        return REPLY_NOT_STREAM
    return accept_reply(preamble.mode)


def check_reply(reply: bytes, mode: int = MODE_STREAM) -> None:
    """Raise :class:`PreambleRejected` unless ``reply`` is exactly ``01 00 mode`` (as the C# sender requires)."""
    if bytes(reply) != accept_reply(mode):
        raise PreambleRejected(reply)


def _is_csharp_int(text: str) -> bool:
    match = _CSHARP_INT.match(text)
    if match is None:
        return False
    sign = -1 if text.strip().startswith("-") else 1
    return -(2**31) <= sign * int(match.group(1)) <= 2**31 - 1


def match_port_name(port_name: str, forwarder_names: Sequence[str]) -> Optional[str]:
    """The forwarder name a preamble's ``port_name`` selects, or None (close without a reply).

    azbridge's rule: with exactly one forwarder, any name that parses as an
    integer selects it (so ``-L 2222:hc`` reaches ``-T hc:22``); otherwise the
    lookup is exact and case-sensitive.
    """
    if len(forwarder_names) == 1 and _is_csharp_int(port_name):
        return forwarder_names[0]
    if port_name in forwarder_names:
        return port_name
    return None


class PreambleParser:
    """Incremental parser for the sender's preamble (the listener side).

    Call :meth:`feed` with each chunk as it arrives. It returns None until the
    whole preamble is in, then the :class:`Preamble`. Bytes after the preamble
    are kept in :attr:`remainder` (payload must not be dropped). A header with a
    version or mode other than 1.0 / 0-1 raises :class:`UnsupportedPreamble` as
    soon as its 4 bytes are in, as azbridge answers before reading the name.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.preamble: Optional[Preamble] = None
        self.remainder: bytes = b""

    @property
    def done(self) -> bool:
        return self.preamble is not None

    def feed(self, data: bytes) -> Optional[Preamble]:
        if self.preamble is not None:
            raise PreambleError("the preamble is complete; payload is not the parser's job")
        self._buffer += data
        if len(self._buffer) < 4:
            return None
        major, minor, mode, length = self._buffer[:4]
        if major != VERSION_MAJOR or minor != VERSION_MINOR or mode not in _MODES:
            raise UnsupportedPreamble(major, minor, mode)
        if len(self._buffer) < 4 + length:
            return None
        # .NET's UTF-8 decoder replaces invalid bytes; such a name then matches nothing.
        name = bytes(self._buffer[4 : 4 + length]).decode("utf-8", "replace")
        self.remainder = bytes(self._buffer[4 + length :])
        self._buffer = bytearray()
        self.preamble = Preamble(port_name=name, mode=mode, major=major, minor=minor)
        return self.preamble


class ReplyParser:
    """Incremental reader of the listener's 3-byte reply (the sender side).

    :meth:`feed` returns None until 3 bytes are in, then the reply. Bytes past
    the reply (payload sent in the same message) are kept in :attr:`remainder`.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.reply: Optional[bytes] = None
        self.remainder: bytes = b""

    @property
    def done(self) -> bool:
        return self.reply is not None

    def feed(self, data: bytes) -> Optional[bytes]:
        if self.reply is not None:
            raise PreambleError("the reply is complete; payload is not the parser's job")
        self._buffer += data
        if len(self._buffer) < REPLY_LENGTH:
            return None
        self.reply = bytes(self._buffer[:REPLY_LENGTH])
        self.remainder = bytes(self._buffer[REPLY_LENGTH:])
        self._buffer = bytearray()
        return self.reply
