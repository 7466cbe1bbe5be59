"""WebSocket messages from the frames :class:`hybridconn._frames.FrameParser` returns.

Both ends join fragments here: :class:`hybridconn.connection.HybridConnection`
whole messages (:meth:`MessageAssembler.add`), the emulator's ``WsChannel``
each frame's share as it comes (:meth:`MessageAssembler.piece`). Text is
decoded, and so validated, by Python's own UTF-8 codec.
"""

from __future__ import annotations

import codecs
from typing import List, NamedTuple, Optional, Union, cast

from ._frames import OP_CONT, OP_TEXT, Frame, FrameError

__all__ = ["MessageAssembler", "Piece", "Message"]

Message = Union[str, bytes]


class Piece(NamedTuple):
    """One data frame's share of a message (:meth:`MessageAssembler.piece`)."""

    text: bool  #: the message is a text message (``data`` is then a str)
    data: Message
    finished: bool  #: this frame ended the message


class MessageAssembler:
    """Data frames (in the order :class:`FrameParser` checked) to messages; text decoded strictly.

    :meth:`add` joins a fragmented message once, at its last frame;
    :meth:`piece` hands each frame's share out as it comes, text decoded
    incrementally so a character split across fragments arrives whole in the
    later piece. Use one or the other on a connection. Invalid UTF-8 raises
    :class:`FrameError` 1007.
    """

    __slots__ = ("_opcode", "_parts", "_decoder")

    def __init__(self) -> None:
        self._opcode: Optional[int] = None  # of the fragmented message in progress
        self._parts: List[bytes] = []
        self._decoder: Optional[codecs.IncrementalDecoder] = None

    def add(self, frame: Frame) -> Optional[Message]:
        """The whole message when ``frame`` ends one (``str`` for text, ``bytes`` for binary), else None."""
        opcode, payload, fin = frame
        if opcode == OP_CONT:
            self._parts.append(payload)
            if not fin:
                return None
            opcode, payload = cast(int, self._opcode), b"".join(self._parts)  # set by the first fragment
            self._opcode, self._parts = None, []
        elif not fin:
            self._opcode, self._parts = opcode, [payload]
            return None
        if opcode == OP_TEXT:
            try:
                return payload.decode("utf-8")
            except UnicodeDecodeError:
                raise FrameError(1007, "invalid UTF-8 in a text message") from None
        return payload

    def piece(self, frame: Frame) -> Piece:
        """``frame``'s share of its message, at once."""
        opcode, payload, fin = frame
        if opcode != OP_CONT:
            self._opcode = opcode
        text = self._opcode == OP_TEXT
        if fin:
            self._opcode = None
        if not text:
            return Piece(False, payload, fin)
        decoder = self._decoder
        try:
            if decoder is None:
                if fin:  # a whole message in one frame: no decoder needed
                    return Piece(True, payload.decode("utf-8"), True)
                decoder = self._decoder = codecs.getincrementaldecoder("utf-8")()
            data = decoder.decode(payload, final=fin)
        except UnicodeDecodeError:
            raise FrameError(1007, "invalid UTF-8 in a text message") from None
        if fin:
            self._decoder = None
        return Piece(True, data, fin)
