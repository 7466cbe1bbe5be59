"""Reading control messages off a socket: frames in, paired message events out.

Shared by the control channel and the request rendezvous sockets. Text
messages are decoded incrementally and strictly (invalid UTF-8 fails the socket
with 1007; the control channel then reconnects), so a character split across
fragments survives; binary frames are paired with the message announcing them by
:class:`~hybridconn.protocol.FrameAssembler`.
"""

from __future__ import annotations

import codecs
import logging
from typing import Any, List, Optional

from ..connection import HybridConnection
from ..exceptions import ProtocolError
from ..protocol import AssemblerEvent, FrameAssembler, ProtocolViolation, StreamingFrameAssembler, ViolationCause

__all__ = ["MessageReader", "BodyTooLargeError", "describe_event"]

_TEXT, _CONT = 0x1, 0x0

log = logging.getLogger(__name__)


class BodyTooLargeError(ProtocolError):
    """A request body went over the reader's ``max_body`` (it was read and dropped)."""


class MessageReader:
    """Reads frames from one socket and pairs them into control messages.

    :param streaming: give a body as it arrives (``MessageHead``, ``BodyChunk``..., ``BodyEnd``:
        a :class:`~hybridconn.protocol.StreamingFrameAssembler`) instead of whole.
    """

    def __init__(self, conn: HybridConnection, max_body: Optional[int] = None, streaming: bool = False) -> None:
        self.conn = conn
        self.assembler: Any = (StreamingFrameAssembler if streaming else FrameAssembler)(max_body=max_body)
        self._decoder: Optional[codecs.IncrementalDecoder] = None

    def finish(self) -> List[Any]:
        """The socket closed: a body in progress ends here."""
        return list(self.assembler.finish())

    def read(self, timeout: Optional[float] = None) -> List[AssemblerEvent]:
        """Events completed by the next frame (often none). Raises ConnectionClosed, RelayTimeoutError."""
        opcode, payload, fin = self.conn.recv_frame(timeout)
        if opcode == _TEXT or (opcode == _CONT and self._decoder is not None):
            try:
                if fin and self._decoder is None:
                    text = payload.decode("utf-8")  # a whole message in one frame: the usual case
                else:
                    if self._decoder is None:
                        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
                    text = self._decoder.decode(payload, final=fin)
            except UnicodeDecodeError as exc:
                # RFC 6455 8.1: invalid UTF-8 in a text message fails the connection with 1007. The
                # relay never sends it; guessing with U+FFFD could change a request's headers or id.
                log.warning("invalid UTF-8 in a text message from the relay; closing the socket with 1007")
                self.conn.shutdown_send(1007, "invalid UTF-8 in a text message", timeout=1.0)
                raise ProtocolError("the relay sent invalid UTF-8 in a text message") from exc
            if fin:
                self._decoder = None
            received: List[Any] = self.assembler.receive_text(text, fin)
            return received
        events = self.assembler.receive_binary(payload, fin)
        return [_too_large(e) if isinstance(e, ProtocolViolation) and e.cause is ViolationCause.BODY_TOO_LARGE else e
                for e in events]


def _too_large(violation: ProtocolViolation) -> ProtocolViolation:
    return ProtocolViolation(BodyTooLargeError(str(violation.error)), violation.message, violation.request_id,
                             violation.kind, violation.cause)


def describe_event(event: Any) -> str:
    """An event as its message kind and id, for logs (never its headers or body)."""
    message = getattr(event, "message", None)
    kind = type(message).__name__ if message is not None else "no message"
    return f"{type(event).__name__}({kind} id={getattr(message, 'id', None) or '-'})"
