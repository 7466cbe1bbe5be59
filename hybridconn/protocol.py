"""Sans-IO core of the Hybrid Connections protocol.

The control messages (``accept``, ``request``, ``response``, ``renewToken``)
as frozen dataclasses, their JSON encoding, the pairing of a JSON text frame
with the binary frames of its body, and the service's limits.

Nothing here touches a socket, a thread or a WebSocket library: the listener
and the emulator both feed frames in and take events out, the way h11 serves
both ends of an HTTP connection. Remote input never raises out of
:class:`FrameAssembler`; it becomes a :class:`ProtocolViolation` event that the
caller logs, and the assembler is ready for the next message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Type, Union

from ._redact import redact
from .exceptions import ProtocolError

__all__ = [
    "CONTROL_CHANNEL_BODY_LIMIT",
    "HEADER_METADATA_LIMIT",
    "RESPONSE_DEADLINE",
    "ACCEPT_WINDOW",
    "MAX_LISTENERS",
    "STRIPPED_HEADERS",
    "Accept",
    "Request",
    "Response",
    "RenewToken",
    "ControlMessage",
    "parse_message",
    "serialize_message",
    "strip_hop_headers",
    "is_stripped_header",
    "header_metadata_size",
    "fits_control_channel",
    "MessageReceived",
    "ProtocolViolation",
    "FrameAssembler",
]

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

#: Headers defined or reserved by RFC 7230 that the service never forwards (Via is kept).
STRIPPED_HEADERS = frozenset(
    {"connection", "content-length", "host", "te", "trailer", "transfer-encoding", "upgrade", "close"}
)

Headers = Dict[str, str]


def _no_repr_secret(token: str) -> str:
    return "<redacted>" if token else "''"


@dataclass(frozen=True)
class Accept:
    """The service asks the listener to accept (or reject) a sender's WebSocket."""

    address: str
    id: str
    connect_headers: Headers = field(default_factory=dict, repr=False)
    extra: Dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Request:
    """An HTTP request relayed to the listener.

    ``method`` and ``request_target`` are None for an *address-only* request:
    the listener must connect to ``address`` (``sb-hc-action=request``) and read
    the full request there.
    """

    address: str
    id: str
    method: Optional[str] = None
    request_target: Optional[str] = None
    request_headers: Headers = field(default_factory=dict, repr=False)
    has_body: bool = False
    extra: Dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_address_only(self) -> bool:
        """True when the request itself must be fetched over the rendezvous address."""
        return self.method is None


@dataclass(frozen=True)
class Response:
    """The listener's answer to a :class:`Request`."""

    request_id: str
    status_code: int
    status_description: Optional[str] = None
    response_headers: Headers = field(default_factory=dict, repr=False)
    has_body: bool = False
    extra: Dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        code = self.status_code
        if isinstance(code, bool) or not isinstance(code, int):
            raise ProtocolError(f"statusCode must be an integer, not {type(code).__name__}")
        if not 100 <= code <= 599:
            raise ProtocolError(f"statusCode {code} is outside 100-599")
        if code in (502, 504):
            raise ProtocolError(
                f"statusCode {code} is reserved for the relay itself and may not be sent by a listener"
            )


@dataclass(frozen=True)
class RenewToken:
    """The listener replaces the token of its control channel."""

    token: str = field(repr=False)
    extra: Dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __repr__(self) -> str:
        return f"RenewToken(token={_no_repr_secret(self.token)})"


ControlMessage = Union[Accept, Request, Response, RenewToken]

# One table: message kind on the wire -> class, and snake_case field -> camelCase wire name.
_WIRE_NAMES: Dict[Type[Any], Tuple[str, Dict[str, str]]] = {
    Accept: ("accept", {"address": "address", "id": "id", "connect_headers": "connectHeaders"}),
    Request: (
        "request",
        {
            "address": "address",
            "id": "id",
            "method": "method",
            "request_target": "requestTarget",
            "request_headers": "requestHeaders",
            "has_body": "body",
        },
    ),
    Response: (
        "response",
        {
            "request_id": "requestId",
            "status_code": "statusCode",
            "status_description": "statusDescription",
            "response_headers": "responseHeaders",
            "has_body": "body",
        },
    ),
    RenewToken: ("renewToken", {"token": "token"}),
}
_KINDS = {kind: cls for cls, (kind, _) in _WIRE_NAMES.items()}
_REQUIRED = {
    Accept: ("address",),
    Request: ("id",),
    Response: ("request_id", "status_code"),
    RenewToken: ("token",),
}
_HEADER_FIELDS = {"connect_headers", "request_headers", "response_headers"}
_STATUS_TEXT = re.compile(r"\s*[0-9]{1,10}\s*")


def parse_message(text: Union[str, bytes]) -> ControlMessage:
    """Parse one control-channel text frame.

    Liberal in what it takes: ``statusCode`` as a number or a numeric string,
    unknown keys kept in ``extra``, optional fields missing. Anything that is
    not a JSON object holding exactly one known message kind raises
    :class:`~hybridconn.exceptions.ProtocolError`.
    """
    if type(text) is not str:
        if isinstance(text, (bytes, bytearray)):
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ProtocolError("control message is not valid UTF-8") from exc
        if not isinstance(text, str):
            raise ProtocolError(f"control message must be text, got {type(text).__name__}")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"control message is not valid JSON: {_preview(text)}") from exc
    if not isinstance(document, dict):
        raise ProtocolError(f"control message must be a JSON object, got {type(document).__name__}")
    # A well-formed message has one key: look it up directly; scan only otherwise.
    kinds = [key for key in document if key in _KINDS]
    if len(kinds) != 1:
        names = sorted(map(str, document))
        found = ", ".join(repr(name[:40]) for name in names[:8]) or "nothing"
        if len(names) > 8:
            found += f" and {len(names) - 8} more"
        raise ProtocolError(
            f"control message must hold exactly one of accept, request, response, renewToken; found {found}"
        )
    kind = kinds[0]
    body = document[kind]
    if not isinstance(body, dict):
        raise ProtocolError(f"{kind!r} must be a JSON object, got {type(body).__name__}")
    return _build(_KINDS[kind], kind, body)


def _build(cls: Type[Any], kind: str, body: Dict[str, Any]) -> ControlMessage:
    fields = _PARSE_TABLE[cls]
    values: Dict[str, Any] = {}
    extra: Dict[str, Any] = {}
    for wire_name, value in body.items():
        spec = fields.get(wire_name)
        if spec is None:
            extra[wire_name] = value
        elif value is not None:
            name, expected, coerce = spec
            # The common case (the type the spec asks for) skips the coercion call.
            values[name] = value if type(value) is expected else coerce(f"{kind}.{wire_name}", value)
    for name in _REQUIRED[cls]:
        if name not in values:
            missing = [_WIRE_NAMES[cls][1][n] for n in _REQUIRED[cls] if n not in values]
            raise ProtocolError(f"{kind!r} message lacks required field(s): {', '.join(missing)}")
    if cls is Request:
        values.setdefault("address", "")
    elif cls is Accept:
        # The id is informative (it repeats sb-hc-id of the address); don't drop an accept over it.
        values.setdefault("id", "")
    return cls(**values, extra=extra)  # type: ignore[no-any-return]


def _as_text(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ProtocolError(f"{where} must be a string, got {type(value).__name__}")
    return value


def _as_flag(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ProtocolError(f"{where} must be true or false, got {value!r:.40}")
    return value


def _as_status(where: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ProtocolError(f"{where} must be a number, got {value!r}")
    if isinstance(value, int):
        return value
    # ASCII digits only: str.isdigit() also admits "²", which int() rejects.
    if isinstance(value, str) and _STATUS_TEXT.fullmatch(value):
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ProtocolError(f"{where} must be a number, got {value!r:.40}")


def _as_headers(where: str, value: Any) -> Headers:
    if not isinstance(value, dict):
        raise ProtocolError(f"{where} must be a JSON object, got {type(value).__name__}")
    headers: Headers = {}
    for name, item in value.items():
        if type(item) is str:
            headers[name] = item
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            headers[name] = str(item)
        elif isinstance(item, list) and all(isinstance(v, str) for v in item):
            headers[name] = ", ".join(item)
        else:
            raise ProtocolError(f"{where}[{name!r:.40}] must be a string, got {type(item).__name__}")
    return headers


# A header object always goes through _as_headers (it copies and checks every value), so its
# "expected" type is one no JSON value has.
_FIELD_PARSERS: Dict[str, Tuple[type, Callable[[str, Any], Any]]] = {
    "has_body": (bool, _as_flag),
    "status_code": (int, _as_status),
    "connect_headers": (type(None), _as_headers),
    "request_headers": (type(None), _as_headers),
    "response_headers": (type(None), _as_headers),
}
# Per class: wire name -> (field name, the type taken as is, coercion otherwise); built once.
_PARSE_TABLE: Dict[Type[Any], Dict[str, Tuple[str, type, Callable[[str, Any], Any]]]] = {
    cls: {wire: (name, *_FIELD_PARSERS.get(name, (str, _as_text))) for name, wire in names.items()}
    for cls, (_, names) in _WIRE_NAMES.items()
}


def serialize_message(message: ControlMessage) -> str:
    """Encode a control message as compact JSON, strictly.

    ``statusCode`` is always a JSON number and ``body`` is always present for
    requests and responses.
    """
    try:
        kind, names = _WIRE_NAMES[type(message)]
    except KeyError:
        raise TypeError(f"not a control message: {type(message).__name__}") from None
    body: Dict[str, Any] = {}
    for name, wire_name in names.items():
        value = getattr(message, name)
        if value is None:
            continue
        if name in _HEADER_FIELDS:
            value = dict(value)
        body[wire_name] = value
    if message.extra:
        for key, value in message.extra.items():
            body.setdefault(key, value)
    return _ENCODE({kind: body})


# One encoder for every message: json.dumps with options builds a new encoder per call.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def is_stripped_header(name: str) -> bool:
    """True for the RFC 7230 connection headers the relay never forwards."""
    return name.lower() in STRIPPED_HEADERS


def strip_hop_headers(headers: Union[Mapping[str, str], Iterable[Tuple[str, str]]]) -> Headers:
    """Drop the RFC 7230 headers the service strips (case-insensitive); keep Via."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {name: value for name, value in items if name.lower() not in STRIPPED_HEADERS}


def header_metadata_size(headers: Mapping[str, str]) -> int:
    """Bytes of header metadata as counted against :data:`HEADER_METADATA_LIMIT`."""
    total = 0
    for name, value in headers.items():
        # ASCII (nearly every header) is one byte per character: skip the encode.
        total += (len(name) if name.isascii() else len(name.encode("utf-8"))) + 4
        total += len(value) if value.isascii() else len(value.encode("utf-8"))
    return total


def fits_control_channel(body_length: int, headers: Optional[Mapping[str, str]] = None) -> bool:
    """Whether a message with this body (and headers) may travel on the control channel."""
    if body_length > CONTROL_CHANNEL_BODY_LIMIT:
        return False
    return headers is None or header_metadata_size(headers) <= HEADER_METADATA_LIMIT


def _preview(text: str, limit: int = 60) -> str:
    # A malformed renewToken frame may hold a token: scrub before showing any of it.
    return repr(redact(text[:limit]) + ("..." if len(text) > limit else ""))


# --------------------------------------------------------------------------------------
# Frame pairing


@dataclass(frozen=True)
class MessageReceived:
    """A complete control message; ``body`` is None when the message announced none."""

    message: ControlMessage
    body: Optional[bytes] = field(default=None, repr=False)  # may be 64 kB, and private


@dataclass(frozen=True)
class ProtocolViolation:
    """The peer broke the framing rules. ``message`` is the one abandoned, if any."""

    error: ProtocolError
    message: Optional[ControlMessage] = None


AssemblerEvent = Union[MessageReceived, ProtocolViolation]


class FrameAssembler:
    """Pairs a JSON text frame with the binary frames of its body.

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
        self.max_body = max_body
        self.ignore_stray_empty_body = ignore_stray_empty_body
        self._pending: Optional[ControlMessage] = None
        self._chunks: List[bytes] = []
        self._size = 0
        self._overflow = False
        self._text: List[str] = []
        self._stray = False

    @property
    def awaiting_body(self) -> bool:
        """True between a message announcing a body and the body's final frame."""
        return self._pending is not None

    def receive_text(self, text: str, fin: bool = True) -> List[AssemblerEvent]:
        """Take one text frame (or fragment)."""
        events: List[AssemblerEvent] = []
        if self._pending is not None:
            abandoned = self._pending
            self._reset_body()
            events.append(
                ProtocolViolation(
                    ProtocolError("a text frame arrived where the body of the previous message was expected"),
                    abandoned,
                )
            )
        self._text.append(text)
        if not fin:
            return events
        whole = "".join(self._text)
        self._text = []
        try:
            message = parse_message(whole)
        except ProtocolError as exc:
            events.append(ProtocolViolation(exc))
            return events
        if getattr(message, "has_body", False):
            self._pending = message
        else:
            events.append(MessageReceived(message))
        return events

    def receive_binary(self, data: bytes, fin: bool = True) -> List[AssemblerEvent]:
        """Take one binary frame (or fragment)."""
        if self._pending is None:
            if self._stray or (self.ignore_stray_empty_body and not data):
                self._stray = not fin
                return []
            if not fin:
                self._stray = True  # drop the continuation fragments quietly
            return [ProtocolViolation(ProtocolError("a binary frame arrived without a message announcing a body"))]
        self._size += len(data)
        if self.max_body is not None and self._size > self.max_body:
            self._overflow = True
            self._chunks = []
        elif not self._overflow:
            self._chunks.append(bytes(data))
        if not fin:
            return []
        message = self._pending
        size, overflow, body = self._size, self._overflow, b"".join(self._chunks)
        self._reset_body()
        if overflow:
            return [
                ProtocolViolation(
                    ProtocolError(f"body of {size} bytes exceeds the limit of {self.max_body} bytes"), message
                )
            ]
        return [MessageReceived(message, body)]

    def finish(self) -> List[AssemblerEvent]:
        """The channel closed: a body in progress ends here (a close ends a rendezvous body)."""
        if self._pending is None:
            return []
        message, body, overflow = self._pending, b"".join(self._chunks), self._overflow
        self._reset_body()
        if overflow:
            return [ProtocolViolation(ProtocolError("body exceeded the limit before the close"), message)]
        return [MessageReceived(message, body)]

    def _reset_body(self) -> None:
        self._pending = None
        self._chunks = []
        self._size = 0
        self._overflow = False
