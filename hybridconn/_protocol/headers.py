"""Header rules both sides share: what the relay never forwards, how header lists are read."""

from __future__ import annotations

from typing import Dict, Iterable, Mapping, Optional, Tuple, Union


#: Headers defined or reserved by RFC 7230 that the service never forwards (Via is kept).
STRIPPED_HEADERS = frozenset(
    {"connection", "content-length", "host", "te", "trailer", "transfer-encoding", "upgrade", "close"}
)

Headers = Dict[str, str]


def is_stripped_header(name: str) -> bool:
    """True for the RFC 7230 connection headers the relay never forwards."""
    return name.lower() in STRIPPED_HEADERS


def strip_hop_headers(headers: Union[Mapping[str, str], Iterable[Tuple[str, str]]]) -> Headers:
    """Drop the RFC 7230 headers the service strips (case-insensitive); keep Via."""
    # type() first: a dict (nearly always) skips typing.Mapping's isinstance, several Python calls deep
    items = headers.items() if type(headers) is dict or isinstance(headers, Mapping) else headers
    return {name: value for name, value in items if name.lower() not in STRIPPED_HEADERS}


def header_value(headers: Mapping[str, str], name: str) -> Optional[str]:
    """The value of header ``name`` in ``headers`` whatever its spelling, or None.

    Control messages keep the sender's spelling (``connectHeaders`` may say
    ``sec-websocket-protocol`` or ``Sec-WebSocket-Protocol``).
    """
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def parse_subprotocols(value: Optional[str]) -> Tuple[str, ...]:
    """The subprotocols a ``Sec-WebSocket-Protocol`` value lists, in order (empty items dropped)."""
    if not value:
        return ()
    return tuple(item for item in (part.strip() for part in value.split(",")) if item)
