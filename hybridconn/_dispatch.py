"""The pool side of the listener: run a handler, write exactly one response.

- :class:`WorkPool` is a ``ThreadPoolExecutor`` with a bounded backlog: when
  it is full, :meth:`WorkPool.submit` says no at once and the caller answers
  503, instead of queueing without bound.
- :func:`call_handler` turns whatever a handler does into a response: a crash
  is a 500 carrying a tracking id (never the exception text), no handler a 501,
  a return value that is not a :class:`RelayedResponse` a 500.
- :class:`Reply` writes the response where it must go: a body of at most
  64 kB on the control channel (the JSON frame plus one binary message, as one
  unit under the channel's send lock); a larger or streamed body, or any
  answer to a request that came by rendezvous, over a rendezvous socket, the
  body in binary fragments ending with FIN.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from http import HTTPStatus
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional

from requests.structures import CaseInsensitiveDict

from .addresses import split_target
from .connection import HybridConnection
from .exceptions import ConnectionClosed, HybridConnectionError, ProtocolError
from .protocol import (
    Request, Response, fits_control_channel, serialize_message, strip_hop_headers,
)
from .relayed import RelayedRequest, RelayedResponse

__all__ = [
    "WorkPool", "Hook", "call_handler", "error_response", "internal_error", "status_description", "relayed_request",
    "Reply", "RequestHandler",
]

log = logging.getLogger(__name__)

RequestHandler = Callable[[RelayedRequest], Any]
RendezvousOpener = Callable[[str], HybridConnection]
RendezvousAdopter = Callable[[HybridConnection], None]

#: Bytes per fragment when a bytes body goes over a rendezvous socket.
FRAGMENT = 64 * 1024


# --------------------------------------------------------------------------------------
# The pool


class WorkPool:
    """Handler threads with a bounded backlog and a count of work in flight.

    ``capacity`` = ``max_workers`` running + ``max_pending`` waiting.
    Work is tagged with a ``kind`` so :meth:`wait_idle` can wait for HTTP
    handlers while WebSocket handlers (which run until their socket closes)
    are still going.
    """

    def __init__(self, path: str, max_workers: int, max_pending: int, role: str = "handler") -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        if max_pending < 0:
            raise ValueError("max_pending must not be negative")
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix=f"hybridconn-{role}-{path}")
        self.capacity = max_workers + max_pending
        self._cond = threading.Condition()
        self._counts = {"http": 0, "ws": 0}
        self._drops: Dict["Future[None]", Callable[[], None]] = {}  # queued work -> how to refuse it
        self._mine = threading.local()
        self._closed = False

    @property
    def in_flight(self) -> int:
        with self._cond:
            return sum(self._counts.values())

    def in_worker(self) -> bool:
        """True when called from one of this pool's threads."""
        return getattr(self._mine, "kind", None) is not None

    def submit(self, kind: str, fn: Callable[..., None], *args: Any,
               on_drop: Optional[Callable[[], None]] = None) -> bool:
        """Queue ``fn(*args)``; False (and nothing queued) when the pool is full or closed.

        ``on_drop`` answers the work instead if it is still queued when :meth:`drop_queued` runs.
        """
        with self._cond:
            if self._closed or sum(self._counts.values()) >= self.capacity:
                return False
            self._counts[kind] += 1
        try:
            future = self._executor.submit(self._run, kind, fn, *args)
        except RuntimeError:  # shut down between the check and the submit
            self._release(kind)
            return False
        if on_drop is not None:
            with self._cond:
                self._drops[future] = on_drop
        future.add_done_callback(lambda f, k=kind: self._done(f, k))  # type: ignore[misc]
        return True

    def _run(self, kind: str, fn: Callable[..., None], *args: Any) -> None:
        self._mine.kind = kind
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - a task must never kill a pool thread silently
            log.exception("unhandled error in a listener task")
        finally:
            self._mine.kind = None

    def _done(self, future: "Future[None]", kind: str) -> None:
        with self._cond:
            self._drops.pop(future, None)
        self._release(kind)

    def drop_queued(self) -> List[Callable[[], None]]:
        """Cancel the work not yet started; the ``on_drop`` callbacks of what was cancelled, to call."""
        with self._cond:
            queued = list(self._drops.items())
        return [on_drop for future, on_drop in queued if future.cancel()]

    def _release(self, kind: str) -> None:
        with self._cond:
            self._counts[kind] -= 1
            self._cond.notify_all()

    def wait_idle(self, deadline: float, kinds: Iterable[str] = ("http", "ws")) -> bool:
        """Wait until no work of ``kinds`` is in flight (the calling task itself excluded)."""
        kinds = tuple(kinds)
        own = getattr(self._mine, "kind", None)
        with self._cond:
            while True:
                busy = sum(self._counts[k] for k in kinds) - (1 if own in kinds else 0)
                if busy <= 0:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)

    def close(self, deadline: float) -> bool:
        """Take no more work, let queued and running work finish until ``deadline``.

        True when every thread has finished. Work still queued at the deadline is
        dropped (call :meth:`drop_queued` first to answer it); a handler still
        running is left to finish on its own.
        """
        with self._cond:
            self._closed = True
        idle = self.wait_idle(deadline)
        if idle and not self.in_worker():
            self._executor.shutdown(wait=True)
            return True
        self._executor.shutdown(wait=False, cancel_futures=True)
        return False


# --------------------------------------------------------------------------------------
# Handler slots


class Hook:
    """A callback slot usable as a decorator (``@listener.on_request``) or assigned (``listener.on_request = f``)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type) -> Any:
        return self if obj is None else BoundHook(obj, self.name)

    def __set__(self, obj: Any, value: Optional[Callable[..., Any]]) -> None:
        if isinstance(value, BoundHook):
            value = value.handler
        if value is not None and not callable(value):
            raise TypeError(f"{self.name} must be callable")
        obj._hooks[self.name] = value


class BoundHook:
    """A listener's hook: call it with a function to register that function."""

    def __init__(self, listener: Any, name: str) -> None:
        self._listener, self._name = listener, name

    @property
    def handler(self) -> Optional[Callable[..., Any]]:
        return self._listener._hooks.get(self._name)

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(func):
            raise TypeError(f"@{self._name} decorates a function")
        self._listener._hooks[self._name] = func
        return func

    def __bool__(self) -> bool:
        return self.handler is not None

    def __repr__(self) -> str:
        return f"<{self._name} hook: {self.handler!r}>"


# --------------------------------------------------------------------------------------
# Running a handler

def error_response(status: int, text: str, tracking_id: Optional[str] = None) -> RelayedResponse:
    """A small text response; ``text`` also becomes the status description."""
    reason = f"{text} (TrackingId:{tracking_id})" if tracking_id else text
    return RelayedResponse(status=status, headers={"Content-Type": "text/plain; charset=utf-8"},
                           body=reason.encode("utf-8"), reason=reason)


def relayed_request(message: Request, body: bytes, path: str, via_rendezvous: bool) -> RelayedRequest:
    """The handler's view of a relayed request: suffix and query split off the target."""
    target = message.request_target or "/"
    suffix, query = split_target(target, path)
    return RelayedRequest(id=message.id, method=message.method or "GET", target=target, path=suffix, query=query,
                          headers=CaseInsensitiveDict(message.request_headers), body=body,
                          via_rendezvous=via_rendezvous)


def internal_error(what: str, *args: Any, exc_info: bool = True, logger: logging.Logger = log) -> RelayedResponse:
    """A 500 carrying a fresh tracking id; ``what % args`` is logged with the id (and the traceback).

    The client sees only the id, which ties its answer to the log; never the exception text.
    """
    tracking_id = uuid.uuid4().hex
    logger.error(what + " (TrackingId:%s)", *args, tracking_id, exc_info=exc_info)
    return error_response(500, "Internal Server Error", tracking_id)


def call_handler(handler: Optional[RequestHandler], request: RelayedRequest) -> RelayedResponse:
    """Run ``handler`` and always come back with a response to send."""
    if handler is None:
        log.warning("no on_request handler: answering 501 to %s %s", request.method, request.target)
        return error_response(501, "Not Implemented: this listener has no request handler")
    try:
        result = handler(request)
    except Exception:  # noqa: BLE001 - any handler failure becomes a 500
        return internal_error("request handler failed on %s %s", request.method, request.target)
    if not isinstance(result, RelayedResponse):
        return internal_error("request handler returned %s instead of a RelayedResponse for %s %s; answering 500",
                              type(result).__name__, request.method, request.target, exc_info=False)
    if result.status in (502, 504) or result.status < 200:
        # 502/504 are the relay's own; a 1xx is not a final response, and this is the only one.
        log.error("a listener may not answer %d; sending 500 instead", result.status)
        return error_response(500, f"Internal Server Error (handler answered {result.status})")
    return result


def status_description(status: int, reason: Optional[str]) -> Optional[str]:
    """``reason`` if it is printable ASCII (it ends up in an HTTP status line), else the standard phrase."""
    if reason is None or all(" " <= ch <= "~" or ch == "\t" for ch in reason):
        return reason
    log.warning("a response reason with control or non-ASCII characters was replaced by the standard phrase")
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return None


# --------------------------------------------------------------------------------------
# Writing the response


class Reply:
    """Where the one response to one request goes.

    :param control: the control channel the request arrived on (None if it came by rendezvous).
    :param rendezvous: the rendezvous socket the request arrived on, if any.
    :param address: the request's rendezvous address, for upgrading a large response.
    :param open_rendezvous: connects a rendezvous address (``sb-hc-action=request``).
    :param adopt: takes back a rendezvous socket opened for the response (after it went out, or
        failed): to serve the sender's later requests on it, or to close it.
    :param on_done: called once the response went out or failed.
    """

    def __init__(
        self,
        request_id: str,
        *,
        control: Optional[HybridConnection] = None,
        rendezvous: Optional[HybridConnection] = None,
        address: str = "",
        open_rendezvous: Optional[RendezvousOpener] = None,
        adopt: Optional[RendezvousAdopter] = None,
        on_done: Optional[Callable[[], None]] = None,
    ) -> None:
        self.request_id = request_id
        self.control = control
        self.rendezvous = rendezvous
        self.address = address
        self._open_rendezvous = open_rendezvous
        self._adopt = adopt
        self._on_done = on_done
        self._sent = False  # one thread sends (the task, or whoever refuses it): no lock needed

    def send(self, response: RelayedResponse) -> bool:
        """Write the response (once; a second call is ignored). False when it could not go out.

        Failures are logged, never raised: a handler whose channel died must
        not crash the pool.
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
        body = response.body
        chunks: Optional[Iterator[bytes]] = None
        if response.is_streamed:
            chunks, failed = _prefetch(body)  # type: ignore[arg-type]
            if failed is not None:
                response, headers, body, chunks = failed, _response_headers(failed), failed.body, None
        if chunks is None:
            size = len(body)  # type: ignore[arg-type]
            if self.rendezvous is None and fits_control_channel(size, headers):
                return self._on_control(response, headers, bytes(body) if size else None)  # type: ignore[arg-type]
            chunks = _slices(bytes(body)) if size else None  # type: ignore[arg-type]
        return self._on_rendezvous(response, headers, chunks)

    def _head(self, response: RelayedResponse, headers: dict, has_body: bool) -> str:
        return serialize_message(
            Response(
                request_id=self.request_id,
                status_code=response.status,
                status_description=status_description(response.status, response.reason),
                response_headers=headers,
                has_body=has_body,
            )
        )

    def _on_control(self, response: RelayedResponse, headers: dict, body: Optional[bytes]) -> bool:
        if self.control is None:
            raise ProtocolError("no channel to respond on")
        self.control.send_unit(self._head(response, headers, body is not None), body)
        return True

    def _on_rendezvous(self, response: RelayedResponse, headers: dict, chunks: Optional[Iterator[bytes]]) -> bool:
        conn = self.rendezvous
        fresh = conn is None
        try:
            if conn is None:
                if self._open_rendezvous is None or not self.address:
                    raise ProtocolError(f"response to {self.request_id} needs a rendezvous but the request had no address")
                conn = self._open_rendezvous(self.address)
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
                self._release_fresh(conn)
        return True

    def _release_fresh(self, conn: HybridConnection) -> None:
        if self._adopt is not None:
            self._adopt(conn)  # keeps serving it, or closes and forgets it
        else:
            conn.close(1000, "", timeout=2.0)


def _response_headers(response: RelayedResponse) -> dict:
    headers = {str(k): str(v) for k, v in (response.headers or {}).items()}
    kept = strip_hop_headers(headers)
    if len(kept) != len(headers):
        log.debug("dropped connection headers from a response: %s", sorted(set(headers) - set(kept)))
    return kept


def _close_body(chunks: Optional[Iterator[bytes]]) -> None:
    close = getattr(chunks, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:  # noqa: BLE001 - the handler's own cleanup failed; the response is over anyway
        log.exception("closing a streamed response body failed")


def _slices(body: bytes) -> Iterator[bytes]:
    view = memoryview(body)
    for start in range(0, len(view), FRAGMENT):
        yield view[start : start + FRAGMENT]  # type: ignore[misc]


def _prefetch(body: Iterable[bytes]) -> "tuple[Optional[Iterator[bytes]], Optional[RelayedResponse]]":
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
