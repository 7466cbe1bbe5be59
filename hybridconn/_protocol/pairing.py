"""Pairing a JSON text frame with the binary frames of its body.

A message whose ``body`` is true is followed by one binary message (possibly
fragmented; on a rendezvous socket it may also end with the close). Two
assemblers take frames in and give events out:

* :class:`FrameAssembler` collects: one :class:`MessageReceived` per message,
  with its whole body;
* :class:`StreamingFrameAssembler` streams: a message announcing a body gives
  a :class:`MessageHead`, then a :class:`BodyChunk` per non-empty fragment and
  a :class:`BodyEnd`, so a body of any size flows without being held. A
  message without a body is still one :class:`MessageReceived`.

Remote input never raises out of the assembler: it becomes a
:class:`ProtocolViolation`, which names the message it abandoned and, even
when the message could not be parsed, the request it was about.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, List, Optional, Union

from ..exceptions import ProtocolError
from .messages import (
    ControlMessage,
    Request,
    Response,
    decode_document,
    document_hint,
    message_from_document,
)



@dataclass(frozen=True)
class MessageReceived:
    """A complete control message; ``body`` is None when the message announced none."""

    message: ControlMessage
    body: Optional[bytes] = field(default=None, repr=False)  # may be 64 kB, and private


@dataclass(frozen=True)
class MessageHead:
    """A message announcing a body; :class:`BodyChunk` events and a :class:`BodyEnd` follow (streaming only)."""

    message: ControlMessage


@dataclass(frozen=True)
class BodyChunk:
    """The next (non-empty) piece of the body in progress (streaming only)."""

    data: bytes = field(repr=False)


@dataclass(frozen=True)
class BodyEnd:
    """The body of ``message`` is complete: its last fragment, or the close (streaming only)."""

    message: ControlMessage


class ViolationCause(enum.Enum):
    """What a :class:`ProtocolViolation` is about."""

    #: A text message that is not a valid control message.
    INVALID_MESSAGE = "invalid-message"
    #: A text frame arrived where the body of the previous message was expected.
    BODY_INTERRUPTED = "body-interrupted"
    #: A binary frame arrived that no message had announced.
    STRAY_BODY = "stray-body"
    #: The body grew past the assembler's ``max_body``.
    BODY_TOO_LARGE = "body-too-large"


@dataclass(frozen=True)
class ProtocolViolation:
    """The peer broke the framing rules.

    :ivar error: what was wrong.
    :ivar message: the message abandoned, if it had been parsed.
    :ivar request_id: the HTTP request it concerns, when that can be told: the
        ``requestId`` of a response, the ``id`` of a request, also read from
        a message that failed to parse (as h11's ``error_status_hint`` tells
        a server what to answer).
    :ivar kind: the wire kind (``"response"``, ``"request"``, ...) of the
        offending message, when known.
    :ivar cause: which rule was broken.
    """

    error: ProtocolError
    message: Optional[ControlMessage] = None
    request_id: Optional[str] = None
    kind: Optional[str] = None
    cause: ViolationCause = ViolationCause.INVALID_MESSAGE

    def __post_init__(self) -> None:
        message = self.message
        if isinstance(message, Response):
            object.__setattr__(self, "kind", self.kind or "response")
            object.__setattr__(self, "request_id", self.request_id or message.request_id)
        elif isinstance(message, Request):
            object.__setattr__(self, "kind", self.kind or "request")
            object.__setattr__(self, "request_id", self.request_id or message.id)


#: A binary frame's payload (wsproto gives bytearray for a fragment).
Binary = Union[bytes, bytearray, memoryview]
#: What a :class:`FrameAssembler` gives.
AssemblerEvent = Union[MessageReceived, ProtocolViolation]
#: What a :class:`StreamingFrameAssembler` gives.
StreamEvent = Union[MessageReceived, MessageHead, BodyChunk, BodyEnd, ProtocolViolation]


class _Pairing:
    """What both assemblers share: text messages, stray binary frames, counting a body against the limit.

    A subclass decides what a body becomes through the ``_body_*`` hooks.
    """

    def __init__(self, max_body: Optional[int] = None, ignore_stray_empty_body: bool = True) -> None:
        self.max_body = max_body
        self.ignore_stray_empty_body = ignore_stray_empty_body
        self._pending: Optional[ControlMessage] = None
        self._size = 0
        self._overflow = False
        self._text: List[str] = []
        self._stray = False

    @property
    def awaiting_body(self) -> bool:
        """True between a message announcing a body and the body's final frame."""
        return self._pending is not None

    def _receive_text(self, text: str, fin: bool) -> List[Any]:
        events: List[Any] = []
        if self._pending is not None:
            self._body_interrupted(self._pending, events)
            self._reset_body()
        self._text.append(text)
        if not fin:
            return events
        whole = "".join(self._text)
        self._text = []
        message = _parse(whole, events)
        if message is None:
            return events
        if getattr(message, "has_body", False):
            self._pending = message
            self._body_started(message, events)
        else:
            events.append(MessageReceived(message))
        return events

    def _receive_binary(self, data: Binary, fin: bool) -> List[Any]:
        message = self._pending
        if message is None:
            return self._stray_binary(data, fin)
        self._size += len(data)
        events: List[Any] = []
        if self.max_body is not None and self._size > self.max_body and not self._overflow:
            self._overflow = True
            self._body_overflowed(message, events)
        elif not self._overflow and data:
            self._body_data(data, events)
        if fin:
            self._body_ended(message, events)
            self._reset_body()
        return events

    def _finish(self) -> List[Any]:
        message = self._pending
        events: List[Any] = []
        if message is not None:
            self._body_closed(message, events)
            self._reset_body()
        return events

    def _stray_binary(self, data: Binary, fin: bool) -> List[Any]:
        if self._stray or (self.ignore_stray_empty_body and not data):
            self._stray = not fin
            return []
        if not fin:
            self._stray = True  # drop the continuation fragments quietly
        error = ProtocolError("a binary frame arrived without a message announcing a body")
        return [ProtocolViolation(error, cause=ViolationCause.STRAY_BODY)]

    def _too_large(self, message: ControlMessage, text: Optional[str] = None) -> ProtocolViolation:
        error = ProtocolError(text or f"body of {self._size} bytes exceeds the limit of {self.max_body} bytes")
        return ProtocolViolation(error, message, cause=ViolationCause.BODY_TOO_LARGE)

    def _reset_body(self) -> None:
        self._pending = None
        self._size = 0
        self._overflow = False

    # A body's life: started, data (non-empty pieces), overflowed (once, past max_body),
    # ended (its last frame), closed (the channel closed first) or interrupted (a text frame came).
    def _body_interrupted(self, message: ControlMessage, events: List[Any]) -> None:
        error = ProtocolError("a text frame arrived where the body of the previous message was expected")
        events.append(ProtocolViolation(error, message, cause=ViolationCause.BODY_INTERRUPTED))

    def _body_started(self, message: ControlMessage, events: List[Any]) -> None:
        raise NotImplementedError

    def _body_data(self, data: Binary, events: List[Any]) -> None:
        raise NotImplementedError

    def _body_overflowed(self, message: ControlMessage, events: List[Any]) -> None:
        raise NotImplementedError

    def _body_ended(self, message: ControlMessage, events: List[Any]) -> None:
        raise NotImplementedError

    def _body_closed(self, message: ControlMessage, events: List[Any]) -> None:
        raise NotImplementedError


class FrameAssembler(_Pairing):
    """Pairs a JSON text frame with the binary frames of its body, collected whole.

    Feed it frames as they arrive (``fin`` marks the last frame of a message);
    each call returns the events that frame completed. A message whose
    ``body`` is true waits for binary frames until one with ``fin`` set. The
    assembler never raises on remote input.

    :param max_body: largest body accepted (None for unlimited); a larger one
        is reported as a violation and dropped.
    :param ignore_stray_empty_body: swallow an empty binary message that
        follows no message (Microsoft's hyco-https sends one after every
        bodiless response).
    """

    def __init__(self, max_body: Optional[int] = None, ignore_stray_empty_body: bool = True) -> None:
        super().__init__(max_body, ignore_stray_empty_body)
        self._chunks: List[bytes] = []

    def receive_text(self, text: str, fin: bool = True) -> List[AssemblerEvent]:
        """Take one text frame (or fragment)."""
        return self._receive_text(text, fin)

    def receive_binary(self, data: Binary, fin: bool = True) -> List[AssemblerEvent]:
        """Take one binary frame (or fragment)."""
        return self._receive_binary(data, fin)

    def finish(self) -> List[AssemblerEvent]:
        """The channel closed: a body in progress ends here (a close ends a rendezvous body)."""
        return self._finish()

    def _reset_body(self) -> None:
        super()._reset_body()
        self._chunks = []

    def _body_started(self, message: ControlMessage, events: List[Any]) -> None:
        pass  # held until its last frame

    def _body_data(self, data: Binary, events: List[Any]) -> None:
        self._chunks.append(bytes(data))

    def _body_overflowed(self, message: ControlMessage, events: List[Any]) -> None:
        self._chunks = []  # reported with the last frame; hold nothing meanwhile

    def _body_ended(self, message: ControlMessage, events: List[Any]) -> None:
        if self._overflow:
            events.append(self._too_large(message))
        else:
            events.append(MessageReceived(message, b"".join(self._chunks)))

    def _body_closed(self, message: ControlMessage, events: List[Any]) -> None:
        if self._overflow:
            events.append(self._too_large(message, "body exceeded the limit before the close"))
        else:
            events.append(MessageReceived(message, b"".join(self._chunks)))


class StreamingFrameAssembler(_Pairing):
    """Pairs a JSON text frame with the binary frames of its body, given as it arrives.

    Like :class:`FrameAssembler`, but a message announcing a body gives a
    :class:`MessageHead`, then a :class:`BodyChunk` per non-empty fragment and
    a :class:`BodyEnd` (at the last fragment, or at :meth:`finish` when the
    channel closes first). A message without a body is a :class:`MessageReceived`.

    :param max_body: largest body accepted (None for unlimited). A larger one
        is reported as a violation as soon as it grows past the limit; the
        rest of it is dropped and no :class:`BodyEnd` follows.
    :param ignore_stray_empty_body: as for :class:`FrameAssembler`.
    """

    def receive_text(self, text: str, fin: bool = True) -> List[StreamEvent]:
        """Take one text frame (or fragment)."""
        return self._receive_text(text, fin)

    def receive_binary(self, data: Binary, fin: bool = True) -> List[StreamEvent]:
        """Take one binary frame (or fragment)."""
        return self._receive_binary(data, fin)

    def finish(self) -> List[StreamEvent]:
        """The channel closed: a body in progress ends here (a close ends a rendezvous body)."""
        return self._finish()

    def _body_started(self, message: ControlMessage, events: List[Any]) -> None:
        events.append(MessageHead(message))

    def _body_data(self, data: Binary, events: List[Any]) -> None:
        events.append(BodyChunk(bytes(data)))

    def _body_overflowed(self, message: ControlMessage, events: List[Any]) -> None:
        events.append(self._too_large(message))

    def _body_ended(self, message: ControlMessage, events: List[Any]) -> None:
        if not self._overflow:
            events.append(BodyEnd(message))

    def _body_closed(self, message: ControlMessage, events: List[Any]) -> None:
        self._body_ended(message, events)

    def _body_interrupted(self, message: ControlMessage, events: List[Any]) -> None:
        if not self._overflow:  # a body over the limit was reported (and abandoned) already
            super()._body_interrupted(message, events)


def _parse(text: str, events: List[AssemblerEvent]) -> Optional[ControlMessage]:
    """The message ``text`` holds; None after appending the violation it is instead."""
    document = None
    try:
        document = decode_document(text)
        return message_from_document(document)
    except ProtocolError as exc:
        kind, request_id = document_hint(document) if document is not None else (None, None)
        events.append(ProtocolViolation(exc, request_id=request_id, kind=kind))
        return None
