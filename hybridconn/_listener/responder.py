"""Writing the one response to one request, where it must go.

- A body of at most 64 kB (with headers within 32 kB) to a request that came
  on the control channel goes on the control channel: the JSON frame plus one
  binary message, as one unit under the channel's send lock.
- A larger or streamed body, or any answer to a request that came by
  rendezvous, goes over a rendezvous socket: the JSON frame, then the body in
  binary fragments ending with FIN. For a control-channel request the socket
  is opened on the request's ``address``; afterwards it is handed back to the
  rendezvous pool, which keeps serving the sender's next requests on it.
"""

from __future__ import annotations

import logging
from typing import Callable, Dict, Iterable, Iterator, Optional, Protocol, Tuple

from ..connection import HybridConnection
from ..exceptions import ConnectionClosed, HybridConnectionError, ProtocolError
from ..protocol import FRAGMENT_SIZE, Response, fits_control_channel, serialize_message, strip_hop_headers
from ..relayed import RelayedResponse
from .handling import internal_error, status_description

__all__ = ["Reply", "ResponseSockets"]

log = logging.getLogger(__name__)

Chunks = Optional[Iterator[bytes]]


class ResponseSockets(Protocol):
    """Where a reply gets a rendezvous socket for a large response, and gives it back."""

    def open_for_response(self, address: str) -> HybridConnection:
        """Connect ``address`` (``sb-hc-action=request``) and track the socket until :meth:`keep`."""

    def keep(self, conn: HybridConnection) -> None:
        """Serve the sender's later requests on ``conn`` (or close it, when full or shutting down)."""


class Reply:
    """Where the one response to one request goes.

    :param control: the control channel the request arrived on (None if it came by rendezvous).
    :param rendezvous: the rendezvous socket the request arrived on, if any.
    :param address: the request's rendezvous address, for upgrading a large response.
    :param sockets: opens and takes back a rendezvous socket for a large response.
    :param on_done: called once the response went out or failed.
    """

    def __init__(
        self,
        request_id: str,
        *,
        control: Optional[HybridConnection] = None,
        rendezvous: Optional[HybridConnection] = None,
        address: str = "",
        sockets: Optional[ResponseSockets] = None,
        on_done: Optional[Callable[[], None]] = None,
    ) -> None:
        self.request_id = request_id
        self.control = control
        self.rendezvous = rendezvous
        self.address = address
        self._sockets = sockets
        self._on_done = on_done
        self._sent = False  # one thread sends (the task, or whoever refuses it): no lock needed

    def send(self, response: RelayedResponse) -> bool:
        """Write the response (once; a second call is ignored). False when it could not go out.

        Failures are logged, never raised: a handler whose channel died must not crash the pool.
        """
        if self._sent:
            log.error("a second response to request %s was dropped", self.request_id)
            return False
        self._sent = True
        try:
            return self._send(response)
        except HybridConnectionError as exc:  # ConnectionClosed among them
            log.warning("could not deliver the response to request %s: %s", self.request_id, exc)
            return False
        finally:
            if self._on_done is not None:
                self._on_done()

    def _send(self, response: RelayedResponse) -> bool:
        headers = _response_headers(response)
        chunks: Chunks = None
        if response.is_streamed:
            chunks, failed = _prefetch(response.body)  # type: ignore[arg-type]
            if failed is not None:
                response, headers = failed, _response_headers(failed)
        if chunks is None:
            body = bytes(response.body)  # type: ignore[arg-type]
            if self.rendezvous is None and fits_control_channel(len(body), headers):
                return self._on_control(response, headers, body or None)
            chunks = _slices(body) if body else None
        return self._on_rendezvous(response, headers, chunks)

    def _head(self, response: RelayedResponse, headers: Dict[str, str], has_body: bool) -> str:
        return serialize_message(
            Response(
                request_id=self.request_id,
                status_code=response.status,
                status_description=status_description(response.status, response.reason),
                response_headers=headers,
                has_body=has_body,
            )
        )

    def _on_control(self, response: RelayedResponse, headers: Dict[str, str], body: Optional[bytes]) -> bool:
        if self.control is None:
            raise ProtocolError("no channel to respond on")
        self.control.send_unit(self._head(response, headers, body is not None), body)
        return True

    def _on_rendezvous(self, response: RelayedResponse, headers: Dict[str, str], chunks: Chunks) -> bool:
        conn, fresh = self.rendezvous, self.rendezvous is None
        try:
            if conn is None:
                conn = self._open_socket()
            conn.send_unit(self._head(response, headers, chunks is not None), chunks)
        except ConnectionClosed:
            raise
        except Exception:  # noqa: BLE001 - a streamed body failed midway: the response is broken
            if conn is None:
                raise  # opening the rendezvous failed: nothing was sent
            log.exception("streaming the response to request %s failed; dropping the rendezvous", self.request_id)
            conn.abort()
            return False
        finally:
            # A body cut short must end now, not at some later garbage collection: closing it runs
            # the handler's generator cleanup (its finally blocks, open files) as soon as the socket fails.
            _close_body(chunks)
            if fresh and conn is not None:
                self._give_back(conn)
        return True

    def _open_socket(self) -> HybridConnection:
        if self._sockets is None or not self.address:
            raise ProtocolError(f"response to {self.request_id} needs a rendezvous but the request had no address")
        return self._sockets.open_for_response(self.address)

    def _give_back(self, conn: HybridConnection) -> None:
        if self._sockets is not None:
            self._sockets.keep(conn)  # keeps serving it, or closes and forgets it
        else:
            conn.close(1000, "", timeout=2.0)


def _response_headers(response: RelayedResponse) -> Dict[str, str]:
    headers = {str(k): str(v) for k, v in (response.headers or {}).items()}
    kept = strip_hop_headers(headers)
    if len(kept) != len(headers):
        log.debug("dropped connection headers from a response: %s", sorted(set(headers) - set(kept)))
    return kept


def _close_body(chunks: Chunks) -> None:
    close = getattr(chunks, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:  # noqa: BLE001 - the handler's own cleanup failed; the response is over anyway
        log.exception("closing a streamed response body failed")


def _slices(body: bytes) -> Iterator[bytes]:
    view = memoryview(body)
    for start in range(0, len(view), FRAGMENT_SIZE):
        yield view[start : start + FRAGMENT_SIZE]  # type: ignore[misc]


def _prefetch(body: Iterable[bytes]) -> Tuple[Chunks, Optional[RelayedResponse]]:
    """Start a streamed body; if it fails before its first chunk, a 500 replaces the response."""
    try:
        iterator = iter(body)
        first = next(iterator, None)
    except Exception:  # noqa: BLE001 - the handler's generator failed before sending anything
        return None, internal_error("streamed response body failed before its first chunk")
    if first is None:
        return iter(()), None

    def chained() -> Iterator[bytes]:
        yield first
        yield from iterator

    return chained(), None
