"""Writing the one response to one request, where it must go.

- A body of at most 64 kB (with headers within 32 kB) to a request that came
  on the control channel goes on the control channel: the JSON frame plus one
  binary message, as one unit under the channel's send lock.
- A larger or streamed body, or any answer to a request that came by
  rendezvous, goes over a rendezvous socket: the JSON frame, then the body in
  binary fragments ending with FIN. For a control-channel request the socket
  is opened on the request's ``address``; afterwards it is handed back to the
  rendezvous pool, which keeps serving the sender's next requests on it.
- A control-channel request can be moved to its rendezvous address before it
  is answered (:meth:`Reply.upgrade`): a draining listener does that for
  every request in flight before it leaves the control channel, and a reply
  whose control channel closed under it falls back to the address too.

Each reply tells its :class:`ReplyObserver` (the listener's in-flight
registry) when it was upgraded and when it is done, with a
:class:`~hybridconn.relayed.ResponseRecord` of what went out.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Callable, Dict, Iterable, Iterator, Optional, Protocol, Tuple

from ..connection import HybridConnection
from ..exceptions import ConnectionClosed, HybridConnectionError, ProtocolError
from ..protocol import FRAGMENT_SIZE, Response, fits_control_channel, serialize_message, strip_hop_headers
from ..relayed import RelayedRequest, RelayedResponse, ResponseRecord
from .handling import internal_error, status_description

__all__ = ["Reply", "ResponseSockets", "ReplyObserver"]

log = logging.getLogger(__name__)

Chunks = Optional[Iterator[bytes]]


class ResponseSockets(Protocol):
    """Where a reply gets a rendezvous socket for a large response, and gives it back."""

    def open_for_response(self, address: str) -> HybridConnection:
        """Connect ``address`` (``sb-hc-action=request``) and track the socket until :meth:`keep`."""

    def keep(self, conn: HybridConnection) -> None:
        """Serve the sender's later requests on ``conn`` (or close it, when full or shutting down)."""


class ReplyObserver(Protocol):
    """Who follows a reply's life (the listener's in-flight registry)."""

    def reply_changed(self, reply: "Reply") -> None:
        """The reply was moved to a rendezvous socket (or failed to be)."""

    def reply_done(self, reply: "Reply", delivered: bool) -> None:
        """The response went out (``delivered``) or could not; :meth:`Reply.record` says what was sent."""


class Reply:
    """Where the one response to one request goes.

    :param control: the control channel the request arrived on (None if it came by rendezvous).
    :param rendezvous: the rendezvous socket the request arrived on, if any.
    :param address: the request's rendezvous address, for upgrading a large response.
    :param sockets: opens and takes back a rendezvous socket for a large response.
    :param on_done: called once the response went out or failed.
    :param request: the request being answered (for the record), if it could be read.
    :param observer: told when the reply is upgraded and when it is done.
    """

    #: Seconds :meth:`send` waits for an upgrade in progress before writing anyway.
    UPGRADE_WAIT = 60.0

    def __init__(
        self,
        request_id: str,
        *,
        control: Optional[HybridConnection] = None,
        rendezvous: Optional[HybridConnection] = None,
        address: str = "",
        sockets: Optional[ResponseSockets] = None,
        on_done: Optional[Callable[[], None]] = None,
        request: Optional[RelayedRequest] = None,
        observer: Optional[ReplyObserver] = None,
    ) -> None:
        self.request_id = request_id
        self.control = control
        self.rendezvous = rendezvous
        self.address = address
        self.request = request
        self._sockets = sockets
        self._on_done = on_done
        self._observer = observer
        self.started = time.time()
        self._started_mono = time.monotonic()
        # The task and whoever refuses or cuts it short may race to answer: the first claims it.
        self._lock = threading.Lock()
        self._claimed = False
        self._finished = False
        self._cut_short = False  # answered by the listener itself at a drain deadline
        self._upgrading: Optional[threading.Event] = None
        self._opened_here = False  # the rendezvous socket is ours to hand back to the pool
        self._status = 0
        self._body_bytes = 0
        self._went_by_rendezvous = rendezvous is not None

    # ------------------------------------------------------------------ state

    @property
    def claimed(self) -> bool:
        """True once a response is being (or has been) written."""
        return self._claimed

    @property
    def needs_control_channel(self) -> bool:
        """True while this reply may still write on the control channel (not upgraded, not finished)."""
        with self._lock:
            return self.control is not None and self.rendezvous is None and not self._finished

    # ------------------------------------------------------------------ moving to the rendezvous address

    def upgrade(self) -> bool:
        """Open the request's rendezvous socket now, so the response no longer needs the control channel.

        True when the reply is (now) independent of the control channel. Does nothing once a
        response is being written, for a request that came by rendezvous, or without an address.
        """
        with self._lock:
            if self.control is None or self.rendezvous is not None or self._finished:
                return True
            if self._claimed or self._upgrading is not None or not self.address or self._sockets is None:
                return False
            upgrading = self._upgrading = threading.Event()
        conn: Optional[HybridConnection] = None
        try:
            conn = self._sockets.open_for_response(self.address)
        except HybridConnectionError as exc:
            log.warning("could not move request %s to its rendezvous address: %s", self.request_id, exc)
        finally:
            with self._lock:
                if conn is not None:
                    self.rendezvous, self._opened_here = conn, True
                self._upgrading = None
            upgrading.set()
            if self._observer is not None:
                self._observer.reply_changed(self)
        return conn is not None

    # ------------------------------------------------------------------ sending

    def send(self, response: RelayedResponse, *, cut_short: bool = False) -> bool:
        """Write the response (once; a later call is ignored). False when it could not go out.

        ``cut_short``: the listener answers for a handler that ran out of time (the handler's
        own answer, if it ever comes, is then dropped quietly). Failures are logged, never
        raised: a handler whose channel died must not crash the pool.
        """
        with self._lock:
            first = not self._claimed
            if first:
                self._claimed, self._cut_short = True, cut_short
            upgrading, was_cut_short = self._upgrading, self._cut_short
        if not first:
            if was_cut_short and not cut_short:
                log.info("request %s was answered 503 when the listener stopped; the handler's late "
                         "response is dropped", self.request_id)
            elif not cut_short:
                log.error("a second response to request %s was dropped", self.request_id)
            return False
        if upgrading is not None:
            upgrading.wait(self.UPGRADE_WAIT)  # an upgrade in progress decides where the response goes
        delivered = False
        try:
            delivered = self._send(response)
            return delivered
        except HybridConnectionError as exc:  # ConnectionClosed among them
            log.warning("could not deliver the response to request %s: %s", self.request_id, exc)
            return False
        finally:
            with self._lock:
                self._finished = True
            if self._on_done is not None:
                self._on_done()
            if self._observer is not None:
                self._observer.reply_done(self, delivered)

    def record(self, delivered: bool) -> ResponseRecord:
        """What went out, for the ``on_response`` hook (built only when someone asks: a record per
        request is measurable CPU on the small-request path)."""
        request = self.request
        return ResponseRecord(
            request_id=self.request_id,
            method=request.method if request is not None else "-",
            target=request.target if request is not None else "-",
            headers=request.headers if request is not None else {},
            remote_address=request.remote_address if request is not None else None,
            status=self._status,
            body_bytes=self._body_bytes,
            started=self.started,
            duration=time.monotonic() - self._started_mono,
            via_rendezvous=self._went_by_rendezvous or (request is not None and request.via_rendezvous),
            delivered=delivered,
        )

    def _send(self, response: RelayedResponse) -> bool:
        headers = _response_headers(response)
        unsendable = _unsendable_header(headers)
        if unsendable is not None:
            if response.is_streamed:
                _close_body(response.body)  # type: ignore[arg-type]
            response = internal_error("response header %r of request %s cannot be sent: %s", unsendable[0],
                                      self.request_id, unsendable[1], exc_info=False)
            headers = _response_headers(response)
        chunks: Chunks = None
        if response.is_streamed:
            chunks, failed = _prefetch(response.body)  # type: ignore[arg-type]
            if failed is not None:
                response, headers = failed, _response_headers(failed)
        self._status = response.status
        if chunks is None:
            body = bytes(response.body)  # type: ignore[arg-type]
            if self.rendezvous is None and fits_control_channel(len(body), headers):
                try:
                    return self._on_control(response, headers, body or None)
                except ConnectionClosed:
                    if not self.address or self._sockets is None:
                        raise
                    # The control channel closed under us (a drain, a lost channel): the
                    # request's rendezvous address is the other way back the protocol allows.
                    log.info("control channel closed; answering request %s over its rendezvous address",
                             self.request_id)
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
        self._body_bytes = len(body or b"")
        return True

    def _on_rendezvous(self, response: RelayedResponse, headers: Dict[str, str], chunks: Chunks) -> bool:
        conn, fresh = self.rendezvous, self.rendezvous is None or self._opened_here
        counted = _Counted(chunks) if chunks is not None else None
        try:
            if conn is None:
                conn = self._open_socket()
            self._went_by_rendezvous = True
            conn.send_unit(self._head(response, headers, counted is not None), counted)
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
            self._body_bytes = counted.count if counted is not None else 0
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


class _Counted:
    """A body's chunks, counting the bytes taken from it (what the access log reports as sent)."""

    __slots__ = ("_chunks", "count")

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self.count = 0

    def __iter__(self) -> "_Counted":
        return self

    def __next__(self) -> bytes:
        chunk = next(self._chunks)
        self.count += len(chunk)
        return chunk


def _response_headers(response: RelayedResponse) -> Dict[str, str]:
    headers = {str(k): str(v) for k, v in (response.headers or {}).items()}
    kept = strip_hop_headers(headers)
    if len(kept) != len(headers):
        log.debug("dropped connection headers from a response: %s", sorted(set(headers) - set(kept)))
    return kept


#: A header name: RFC 7230's token (the separators, controls and anything beyond ASCII excluded).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_LINE_BREAK = re.compile(r"[\r\n\0]")


def _unsendable_header(headers: Dict[str, str]) -> Optional[Tuple[str, str]]:
    """``(name, why)`` of the first header HTTP/1.1 cannot carry, or None.

    Values travel as latin-1 (PEP 3333; ``filename="café.txt"`` is fine); a character beyond it,
    or a line break, cannot be sent, and is better a 500 with a tracking id than a dropped connection.
    """
    for name, value in headers.items():
        if _TOKEN.fullmatch(name) is None:
            return name, "not a valid header name"
        if _LINE_BREAK.search(value) is not None:
            return name, "its value has a line break"
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            return name, "its value has characters beyond latin-1"
    return None


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
    """Start a streamed body; if it fails before its first chunk, a 500 replaces the response.

    A first chunk that is not bytes (a ``str``, a dict) is a 500 too: nothing was sent yet, so the
    sender can still get a clean error instead of a response that breaks off. A bad chunk later
    aborts the rendezvous socket, which the relay passes on as a broken response.
    """
    try:
        iterator = iter(body)
        first = next(iterator, None)
    except Exception:  # noqa: BLE001 - the handler's generator failed before sending anything
        return None, internal_error("streamed response body failed before its first chunk")
    if first is None:
        return iter(()), None
    if not isinstance(first, (bytes, bytearray, memoryview)):
        _close_body(iterator)
        return None, internal_error("a streamed response body yielded %s, not bytes", type(first).__name__,
                                    exc_info=False)

    def chained() -> Iterator[bytes]:
        yield first
        yield from iterator

    return chained(), None
