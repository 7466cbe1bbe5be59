"""The control messages as frozen dataclasses, and their JSON.

``accept``, ``request``, ``response`` and ``renewToken`` are the four kinds a
control channel or rendezvous socket carries. :func:`parse_message` is
liberal in what it takes (as the Node and Java clients write it);
:func:`serialize_message` and :func:`address_only_request` write strictly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple, Type, Union

from .._redact import redact
from ..exceptions import ProtocolError


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
# The wire field naming the HTTP request a message belongs to.
_ID_FIELDS = {"request": "id", "response": "requestId"}
_STATUS_TEXT = re.compile(r"\s*[0-9]{1,10}\s*")


def parse_message(text: Union[str, bytes]) -> ControlMessage:
    """Parse one control-channel text frame.

    Liberal in what it takes: ``statusCode`` as a number or a numeric string,
    unknown keys kept in ``extra``, optional fields missing. Anything that is
    not a JSON object holding exactly one known message kind raises
    :class:`~hybridconn.exceptions.ProtocolError`.
    """
    return message_from_document(decode_document(text))


def decode_document(text: Union[str, bytes]) -> Dict[str, Any]:
    """The JSON object of a text frame (the first half of :func:`parse_message`)."""
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
    return document


def message_from_document(document: Dict[str, Any]) -> ControlMessage:
    """The control message a decoded JSON object holds (the second half of :func:`parse_message`)."""
    kind = _single_kind(document)
    if kind is None:
        names = sorted(map(str, document))
        found = ", ".join(repr(name[:40]) for name in names[:8]) or "nothing"
        if len(names) > 8:
            found += f" and {len(names) - 8} more"
        raise ProtocolError(
            f"control message must hold exactly one of accept, request, response, renewToken; found {found}"
        )
    body = document[kind]
    if not isinstance(body, dict):
        raise ProtocolError(f"{kind!r} must be a JSON object, got {type(body).__name__}")
    return _build(_KINDS[kind], kind, body)


def document_hint(document: Dict[str, Any]) -> Tuple[Optional[str], Optional[str]]:
    """``(kind, request id)`` of a message that failed to parse, as far as they can be told.

    The request id is a response's ``requestId`` or a request's ``id``, when
    it is a string: whoever waits for that request can then be answered even
    though the message itself was rejected.
    """
    kind = _single_kind(document)
    if kind is None:
        return None, None
    body = document[kind]
    wire_name = _ID_FIELDS.get(kind)
    value = body.get(wire_name) if wire_name is not None and isinstance(body, dict) else None
    return kind, value if isinstance(value, str) else None


def _single_kind(document: Dict[str, Any]) -> Optional[str]:
    # A well-formed message has one key: look it up directly; scan only otherwise.
    kinds = [key for key in document if key in _KINDS]
    return kinds[0] if len(kinds) == 1 else None


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


def address_only_request(address: str, request_id: str) -> str:
    """The text of an address-only request: the listener fetches the request at ``address``.

    Only ``address`` and ``id``: hyco-https tells this case by a missing
    ``method``, the Java listener by a missing ``body``, so neither may be
    present (a :class:`Request` with ``method=None`` serializes ``body``).
    """
    return _ENCODE({"request": {"address": address, "id": request_id}})


# One encoder for every message: json.dumps with options builds a new encoder per call.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _preview(text: str, limit: int = 60) -> str:
    # A malformed renewToken frame may hold a token: scrub before showing any of it.
    return repr(redact(text[:limit]) + ("..." if len(text) > limit else ""))
