"""RelayedRequests as the listener builds them, for calling WSGI apps directly, and reading what they answer."""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple
from urllib.parse import unquote

from hybridconn.relayed import RelayedRequest, RelayedResponse

EMULATOR_NAMESPACE = "ws://127.0.0.1:9350"


def make_request(
    method: str = "GET",
    suffix: str = "/",
    query: str = "",
    headers: Optional[Dict[str, str]] = None,
    body: bytes = b"",
    name: str = "hc1",
) -> RelayedRequest:
    """A RelayedRequest as the listener builds it for ``/{name}{suffix}?{query}``."""
    target = f"/{name}{suffix}" + (f"?{query}" if query else "")
    return RelayedRequest(
        id="req-1",
        method=method,
        target=target,
        path=unquote(suffix),
        query=query,
        headers=dict(headers or {}),
        body=body,
    )


def body_of(response: RelayedResponse) -> bytes:
    """The whole body; a streamed body is iterated to its end and closed."""
    if not response.is_streamed:
        return bytes(response.body)  # type: ignore[arg-type]
    try:
        return b"".join(response.body)  # type: ignore[arg-type]
    finally:
        close = getattr(response.body, "close", None)
        if close is not None:
            close()


Caller = Callable[..., Tuple[RelayedResponse, bytes]]
