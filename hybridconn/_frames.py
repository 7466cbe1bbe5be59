"""WebSocket frames (RFC 6455 section 5) for both ends, without I/O.

The one place a frame is packed, masked, parsed or checked: the client side
(:class:`hybridconn.connection.HybridConnection`, which masks what it sends)
and the emulator's server side (:mod:`hybridconn.emulator.ws`, which does
not) both use it.

- :func:`pack_frame` builds one frame; :func:`close_payload` /
  :func:`parse_close` encode and check a close frame's code and reason.
- :class:`FrameParser` takes bytes as they arrive and yields whole
  :class:`Frame` values, failing with :class:`FrameError` (carrying the close
  code to fail the connection with) on anything RFC 6455 forbids when no
  extension was negotiated, and on a message over an optional size limit.
- :func:`fragment_frames` packs one binary message from a stream of chunks.

:mod:`hybridconn._messages` joins the frames a parser returns into messages.

Masking: websocket-client masks with one big-integer XOR over the whole
payload (~500 MB/s at 64 KiB, ~250 MB/s at 1 MiB on the project machine; it
was over half of the listener's CPU for a 1 MB response). Translating the
four byte lanes (``data[i::4]``) of a bytearray with ``bytes.translate`` runs
in C at ~850 MB/s for any size above 1 kB; below that the XOR is as fast.
"""

from __future__ import annotations

import enum
import os
import struct
from typing import Iterable, Iterator, List, NamedTuple, Optional, Tuple, Union, cast

__all__ = [
    "OP_CONT",
    "OP_TEXT",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "MAX_CONTROL_PAYLOAD",
    "MAX_CLOSE_REASON",
    "Role",
    "Frame",
    "FrameError",
    "FrameParser",
    "mask",
    "pack_frame",
    "fragment_frames",
    "close_payload",
    "close_reason_bytes",
    "parse_close",
    "is_valid_close_code",
]

Buffer = Union[bytes, bytearray, memoryview]

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
_OPCODES = frozenset((OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG))

#: A control frame's payload limit (RFC 6455 section 5.5).
MAX_CONTROL_PAYLOAD = 125
#: A close reason's limit in UTF-8 bytes: the control frame limit less the 2-byte code.
MAX_CLOSE_REASON = MAX_CONTROL_PAYLOAD - 2

_HEAD = struct.Struct("!BB")
_HEAD_16 = struct.Struct("!BBH")
_HEAD_64 = struct.Struct("!BBQ")
_LENGTH_16 = struct.Struct("!H")
_LENGTH_64 = struct.Struct("!Q")
_CODE = struct.Struct("!H")

#: _XOR_TABLES[k] maps every byte b to b ^ k.
_XOR_TABLES: List[bytes] = [bytes(b ^ k for b in range(256)) for k in range(256)]
_LANES_FROM = 1024  # below this the big-integer XOR is as fast and simpler


class Role(enum.Enum):
    """Which end of the WebSocket we are; it decides which frames must be masked."""

    #: We mask what we send; the server's frames must not be masked.
    CLIENT = "client"
    #: We send unmasked frames; every client frame must be masked.
    SERVER = "server"


class Frame(NamedTuple):
    """One whole frame as received: unmasked payload, ``fin`` as a bool."""

    opcode: int
    payload: bytes
    fin: bool


class FrameError(Exception):
    """The peer broke RFC 6455 (or a size limit); fail the connection with close ``code``.

    ``code`` is 1002 (protocol error), 1007 (invalid UTF-8) or 1009 (message
    too big); ``reason`` fits a close frame.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


# ---------------------------------------------------------------------- packing


def mask(key: bytes, data: Buffer) -> Buffer:
    """``data`` XOR the 4-byte ``key`` repeated (masking and unmasking are the same)."""
    size = len(data)
    if size < _LANES_FROM:
        repeated = (key * (size // 4 + 1))[:size]
        return (int.from_bytes(data, "little") ^ int.from_bytes(repeated, "little")).to_bytes(size, "little")
    out = bytearray(data)  # lanes of a bytearray slice and translate faster than lanes of bytes
    for lane in range(4):
        out[lane::4] = out[lane::4].translate(_XOR_TABLES[key[lane]])
    return out


def pack_frame(opcode: int, payload: Buffer = b"", *, fin: bool = True, masked: bool = False) -> bytes:
    """One complete frame; ``masked`` (a client's frames) adds a fresh random key and masks the payload.

    Raises ``ValueError`` for an unknown opcode, or a control frame that is
    fragmented or carries over 125 bytes.
    """
    size = len(payload)
    if opcode not in _OPCODES:
        raise ValueError(f"unknown WebSocket opcode {opcode:#x}")
    if opcode >= OP_CLOSE and (size > MAX_CONTROL_PAYLOAD or not fin):
        raise ValueError(f"a control frame carries at most {MAX_CONTROL_PAYLOAD} bytes, unfragmented")
    first = (0x80 | opcode) if fin else opcode
    bit = 0x80 if masked else 0
    if size < 126:
        header = _HEAD.pack(first, bit | size)
    elif size < 65536:
        header = _HEAD_16.pack(first, bit | 126, size)
    else:
        header = _HEAD_64.pack(first, bit | 127, size)
    if not masked:
        return b"".join((header, payload))
    key = os.urandom(4)
    return b"".join((header, key, mask(key, payload)))


def fragment_frames(chunks: Iterable[Buffer], size: int, *, masked: bool = False) -> Iterator[bytes]:
    """One binary message as frames, packed as the chunks come: fragments of at most ``size`` bytes.

    A frame waits for the next chunk, which tells whether it is the last (FIN);
    no chunks at all make one empty frame. ``TypeError`` for a chunk that is not bytes.
    """
    opcode = OP_BINARY
    previous: Optional[bytes] = None
    for chunk in chunks:
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise TypeError(f"body chunks must be bytes, not {type(chunk).__name__}")
        view = memoryview(chunk)
        for start in range(0, len(view), size):
            if previous is not None:
                yield pack_frame(opcode, previous, fin=False, masked=masked)
                opcode = OP_CONT
            # A copy: the caller may reuse its buffer for the next chunk while this one waits.
            previous = bytes(view[start : start + size])
    yield pack_frame(opcode, previous or b"", masked=masked)


# ---------------------------------------------------------------------- close payloads


def is_valid_close_code(code: int) -> bool:
    """A code a close frame may carry on the wire (RFC 6455 section 7.4 and the IANA registry).

    1004 is reserved; 1005, 1006 and 1015 only describe a close locally;
    other codes under 3000 are unassigned; 3000-4999 belong to libraries and
    applications.
    """
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def close_reason_bytes(reason: str) -> bytes:
    """At most 123 bytes of UTF-8 (a close frame's limit), cut on a character boundary."""
    encoded = reason.encode("utf-8")
    if len(encoded) <= MAX_CLOSE_REASON:
        return encoded
    return encoded[:MAX_CLOSE_REASON].decode("utf-8", "ignore").encode("utf-8")


def close_payload(code: Optional[int], reason: str = "") -> bytes:
    """A close frame's payload: ``code`` and ``reason`` (cut to fit), or empty for no code (None).

    Raises ``ValueError`` for a code no close frame may carry, or a reason without a code.
    """
    if code is None:
        if reason:
            raise ValueError("a close reason needs a close code")
        return b""
    if not is_valid_close_code(code):
        raise ValueError(f"{code} is not a close code a close frame may carry")
    return _CODE.pack(code) + close_reason_bytes(reason)


def parse_close(payload: bytes) -> Tuple[Optional[int], str]:
    """``(code, reason)`` of a received close frame; code None when it had none (1005).

    Raises :class:`FrameError`: 1002 for a one-byte payload or an invalid code,
    1007 for a reason that is not UTF-8.
    """
    if not payload:
        return None, ""
    if len(payload) == 1:
        raise FrameError(1002, "a close frame with a one-byte payload")
    code = _CODE.unpack_from(payload)[0]
    if not is_valid_close_code(code):
        raise FrameError(1002, f"a close frame with the invalid code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError(1007, "a close reason that is not UTF-8") from None
    return code, reason


# ---------------------------------------------------------------------- parsing


class _LongFrame:
    """What is left of a data frame being handed out in pieces."""

    __slots__ = ("opcode", "left", "key", "fin")

    def __init__(self, opcode: int, left: int, key: Optional[bytes], fin: bool) -> None:
        self.opcode, self.left, self.fin = opcode, left, fin  # opcode: of the next piece
        self.key = key  # the masking key, turned to start at the next piece


class FrameParser:
    """Bytes in (:meth:`feed`), checked frames out (:meth:`next_frame`).

    Besides each frame on its own, the parser follows the message sequence
    (a continuation needs a message in progress; a new message may not start
    inside one) and, with ``max_message_size``, the size of the message in
    progress, judged from the frame headers before the payload is buffered.

    :param role: our end; a server requires masked frames, a client refuses them.
    :param accept_masked: as a client, also accept masked frames (unmasked as
        they come), as websocket-client does. Masking protects intermediaries
        from a client's payloads; a masked frame from a server harms nobody.
    :param max_message_size: the longest message (its fragments' payloads
        together) before :class:`FrameError` 1009; None: no limit.
    :param max_piece: hand a data frame longer than this out as it arrives, in
        pieces of this size that are fragments of its message (RFC 6455
        section 5.4 lets an intermediary refragment), so a relay holds at most
        about this much of any frame. None: whole frames only.
    """

    __slots__ = ("_want_mask", "max_message_size", "_max_piece", "_buffer", "_pos", "_later", "_later_size",
                 "_needed", "_message_opcode", "_message_size", "_long")  # one per connection: keep it small

    def __init__(self, role: Role, *, accept_masked: bool = False, max_message_size: Optional[int] = None,
                 max_piece: Optional[int] = None) -> None:
        if max_piece is not None and max_piece < 1:
            raise ValueError("max_piece must be at least 1")
        self._want_mask: Optional[bool] = True if role is Role.SERVER else (None if accept_masked else False)
        self.max_message_size = max_message_size
        self._max_piece = max_piece
        self._buffer = b""  # bytes at and after _pos are not parsed yet
        self._pos = 0
        self._later: List[bytes] = []  # bytes received after _buffer, joined when a frame needs them
        self._later_size = 0
        self._needed = 2  # bytes from _pos that the next step of parsing needs
        self._message_opcode: Optional[int] = None  # data opcode of a fragmented message in progress
        self._message_size = 0
        self._long: Optional[_LongFrame] = None  # a frame being handed out in pieces

    def feed(self, data: bytes) -> None:
        """Bytes from the peer, in order."""
        if not data:
            return
        if type(data) is not bytes:  # slices of it become payloads, which are bytes
            data = bytes(data)
        if self._pos >= len(self._buffer):
            self._buffer, self._pos = data, 0  # the common case: nothing left over, no copy
        else:
            self._later.append(data)
            self._later_size += len(data)

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as frames."""
        return len(self._buffer) - self._pos + self._later_size

    @property
    def wanted(self) -> int:
        """Bytes still to receive before the next frame (or piece) can be complete (at least 1)."""
        return max(1, self._needed - self.buffered)

    @property
    def inside_frame(self) -> bool:
        """After :meth:`next_frame` returned None: part of a frame has arrived, the rest has not."""
        return self._long is not None or self.buffered > 0

    def receive(self, data: bytes) -> List[Frame]:
        """:meth:`feed` ``data``, then every frame now complete. Raises :class:`FrameError`."""
        self.feed(data)
        frames = []
        while (frame := self.next_frame()) is not None:
            frames.append(frame)
        return frames

    def next_frame(self) -> Optional[Frame]:
        """The next whole frame (or piece), or None until more bytes arrive. Raises :class:`FrameError`."""
        while True:
            frame = self._parse() if self._long is None else self._next_piece(self._long)
            if frame is not None:
                return frame
            if self._later_size == 0 or self.buffered < self._needed:
                return None
            # Enough bytes have come in pieces: join them once (never per piece, which is quadratic).
            self._buffer = b"".join([memoryview(self._buffer)[self._pos:], *self._later])
            self._pos, self._later, self._later_size = 0, [], 0

    def _parse(self) -> Optional[Frame]:
        buffer, pos = self._buffer, self._pos
        available = len(buffer) - pos
        if available < 2:
            self._needed = 2
            return None
        first, second = buffer[pos], buffer[pos + 1]
        self._check_start(first, second)  # at once: a broken frame must not wait for its length bytes
        length = second & 0x7F
        head = 2
        if length >= 126:
            head = 4 if length == 126 else 10
            if available < head:
                self._needed = head
                return None
            length = self._long_length(buffer, pos, head)
        limit = self.max_message_size
        if limit is not None and first & 0x08 == 0 and self._message_size + length > limit:
            raise FrameError(1009, f"a message over {limit} bytes")
        if second & 0x80:
            head += 4
        end = pos + head + length
        if end > len(buffer):
            piece = self._max_piece
            if piece is not None and length > piece and first & 0x08 == 0 and self.buffered < head + length:
                return self._start_pieces(first, second, head, length)
            self._needed = head + length
            return None
        key = buffer[pos + head - 4 : pos + head] if second & 0x80 else None
        self._pos, self._needed = end, 2
        return self._done(first & 0x0F, self._payload(pos + head, end, key), first & 0x80 == 0x80, length)

    @staticmethod
    def _long_length(buffer: bytes, pos: int, head: int) -> int:
        """A 16- or 64-bit payload length, which must be in its shortest form (RFC 6455 section 5.2)."""
        if head == 4:
            length: int = _LENGTH_16.unpack_from(buffer, pos + 2)[0]
            if length < 126:
                raise FrameError(1002, "a frame length not in its shortest form")
            return length
        length = _LENGTH_64.unpack_from(buffer, pos + 2)[0]
        if length >> 63 or length < 65536:
            raise FrameError(1002, "a 64-bit frame length with its top bit set or not in its shortest form")
        return length

    def _payload(self, start: int, end: int, key: Optional[bytes]) -> bytes:
        if key is None:
            return self._buffer[start:end]
        with memoryview(self._buffer) as view:  # no copy before mask() makes its own
            payload = mask(key, view[start:end])
        return payload if isinstance(payload, bytes) else bytes(payload)

    def _done(self, opcode: int, payload: bytes, fin: bool, length: int) -> Frame:
        """Follow the message sequence past a data frame (or the last piece of one)."""
        if opcode < OP_CLOSE:
            if fin:
                self._message_opcode, self._message_size = None, 0
            else:
                if opcode != OP_CONT:
                    self._message_opcode = opcode
                self._message_size += length
        return Frame(opcode, payload, fin)

    def _start_pieces(self, first: int, second: int, head: int, length: int) -> Optional[Frame]:
        pos = self._pos
        if len(self._buffer) - pos < head:  # the masking key is still to come
            self._needed = head + cast(int, self._max_piece)  # set: pieces are only cut with a limit
            return None
        key = self._buffer[pos + head - 4 : pos + head] if second & 0x80 else None
        self._pos = pos + head
        opcode = first & 0x0F
        if opcode != OP_CONT:
            self._message_opcode = opcode  # a message is in progress until the last piece
        self._long = _LongFrame(opcode, length, key, first & 0x80 == 0x80)
        return self._next_piece(self._long)

    def _next_piece(self, long: _LongFrame) -> Optional[Frame]:
        size = min(long.left, cast(int, self._max_piece))
        pos = self._pos
        if len(self._buffer) - pos < size:
            self._needed = size
            return None
        key = long.key
        self._pos, self._needed = pos + size, 2
        payload = self._payload(pos, pos + size, key)
        if key is not None:
            turn = size % 4
            long.key = key[turn:] + key[:turn]
        long.left -= size
        opcode, long.opcode = long.opcode, OP_CONT
        if long.left:
            self._message_size += size
            return Frame(opcode, payload, False)
        self._long = None
        return self._done(opcode, payload, long.fin, size)

    def _check_start(self, first: int, second: int) -> None:
        """Everything a frame's first two bytes tell us is wrong."""
        if first & 0x70:
            raise FrameError(1002, "reserved bits set, but no extension was negotiated")
        opcode = first & 0x0F
        if opcode not in _OPCODES:
            raise FrameError(1002, f"unknown opcode {opcode:#x}")
        if opcode >= OP_CLOSE:
            if not first & 0x80 or second & 0x7F > MAX_CONTROL_PAYLOAD:
                raise FrameError(1002, "a control frame fragmented or over 125 bytes")
        elif opcode == OP_CONT:
            if self._message_opcode is None:
                raise FrameError(1002, "a continuation frame without a message")
        elif self._message_opcode is not None:
            raise FrameError(1002, "a new message inside a fragmented one")
        want = self._want_mask
        if want is not None and (second & 0x80 == 0x80) is not want:
            raise FrameError(1002, "an unmasked client frame" if want else "a masked server frame")
