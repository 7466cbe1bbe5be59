"""RelayedRequest and RelayedResponse: what an HTTP handler receives and returns."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import IO, Any, Iterable, Mapping, Optional, Union

from ._headermap import HeaderMap

__all__ = ["RelayedRequest", "RelayedResponse", "ResponseBody", "ResponseRecord", "HeaderMap"]

ResponseBody = Union[bytes, str, Iterable[bytes]]


@dataclass
class RelayedRequest:
    """An HTTP request that came through the relay.

    :ivar id: the relay's request id.
    :ivar method: ``GET``, ``POST``, ...
    :ivar target: the request target as sent (``/hc1/suffix?x=1``), without ``sb-hc-*``.
    :ivar path: the path suffix after the hybrid connection name (``/suffix``, or ``""``).
    :ivar query: the query string without ``sb-hc-*`` parameters.
    :ivar headers: the sender's headers, case-insensitive (a :class:`HeaderMap`, a MutableMapping).
    :ivar body: the whole request body (``b""`` when :attr:`streamed`: read :attr:`stream` instead).
    :ivar via_rendezvous: True when the request arrived over a rendezvous socket.
    :ivar remote_address: the sender's address as the relay reports it (``remoteEndpoint``), or None.
    :ivar remote_port: the sender's port as the relay reports it (``remoteEndpoint``), or None.
    :ivar stream: the body as a read-only binary file. Always there: over :attr:`body` when the
        body was read whole, or fed from the socket as it arrives when the listener was made with
        ``stream_request_bodies=True`` (then :attr:`streamed` is True and :attr:`body` is empty).
        A streamed body can be read once; what the handler leaves unread is dropped after its
        response went out.
    """

    id: str
    method: str
    target: str
    path: str = ""
    query: str = ""
    headers: HeaderMap = field(default_factory=HeaderMap)
    body: bytes = b""
    via_rendezvous: bool = False
    remote_address: Optional[str] = None
    remote_port: Optional[int] = None
    stream: Optional[IO[bytes]] = field(default=None, repr=False, compare=False)
    _streamed: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.headers, HeaderMap):
            self.headers = HeaderMap(self.headers)
        self._streamed = self.stream is not None
        if self.stream is None:
            self.stream = io.BytesIO(self.body)

    @property
    def streamed(self) -> bool:
        """True when the body comes through :attr:`stream` as it arrives (and :attr:`body` is empty)."""
        return self._streamed

    def json(self, **kwargs: Any) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body.decode("utf-8"), **kwargs)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    def __repr__(self) -> str:
        size = "streamed body" if self._streamed else f"{len(self.body)} bytes"
        return f"<RelayedRequest {self.method} {self.target} id={self.id} {size}>"


@dataclass
class RelayedResponse:
    """A handler's answer.

    ``body`` is ``bytes``, ``str`` (sent as UTF-8) or an iterable of ``bytes``
    chunks, which is streamed over a rendezvous socket. Bodies over 64 kB go by
    rendezvous automatically.
    """

    status: int = 200
    headers: Optional[Mapping[str, str]] = None
    body: ResponseBody = b""
    reason: Optional[str] = None

    def __post_init__(self) -> None:
        if isinstance(self.status, bool) or not isinstance(self.status, int) or not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status code (100-599), not {self.status!r}")
        if isinstance(self.body, str):
            self.body = self.body.encode("utf-8")
        self.headers = dict(self.headers or {})

    @property
    def is_streamed(self) -> bool:
        """True when the body is an iterable of chunks rather than bytes."""
        return not isinstance(self.body, (bytes, bytearray, memoryview))

    def __repr__(self) -> str:
        size = "streamed" if self.is_streamed else f"{len(self.body)} bytes"  # type: ignore[arg-type]
        return f"<RelayedResponse {self.status} {size}>"


@dataclass(frozen=True)
class ResponseRecord:
    """What went out for one HTTP request: the ``@listener.on_response`` callback's argument.

    Made once the response was written (or failed to be), for access logs and metrics.

    :ivar request_id: the relay's request id.
    :ivar method: the request's method (``-`` when the request could not be read).
    :ivar target: the request target, ``sb-hc-*`` parameters already stripped by the relay.
    :ivar headers: the request's headers (for ``Referer``, ``User-Agent``; never log them whole).
    :ivar remote_address: the sender's address when the relay reports it.
    :ivar status: the status code sent.
    :ivar body_bytes: response body bytes written.
    :ivar started: when the listener read the request (``time.time()``).
    :ivar duration: seconds from reading the request to the response's last byte.
    :ivar via_rendezvous: the request or its response travelled over a rendezvous socket.
    :ivar delivered: False when the response could not be written (the socket failed).
    """

    request_id: str
    method: str
    target: str
    headers: Mapping[str, str] = field(repr=False)
    remote_address: Optional[str]
    status: int
    body_bytes: int
    started: float
    duration: float
    via_rendezvous: bool
    delivered: bool = True
