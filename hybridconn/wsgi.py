"""Serve any WSGI application (Django, Flask, ...) through a listener.

:func:`serve_wsgi` registers an ``on_request`` handler that turns each
:class:`~hybridconn.relayed.RelayedRequest` into a PEP 3333 environ and the
application's answer into a :class:`~hybridconn.relayed.RelayedResponse`. The two halves
are pure functions, :func:`build_environ` and :func:`call_wsgi` (usable without sockets).

The hybrid connection's name is the mount point: a request to
``https://ns/hc1/users/7?x=1`` reaches the app with ``SCRIPT_NAME="/hc1"``,
``PATH_INFO="/users/7"`` and ``QUERY_STRING="x=1"``.
"""

from __future__ import annotations

import inspect
import io
import logging
from types import TracebackType
from typing import IO, Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Type, Union
from urllib.parse import unquote_to_bytes, urlsplit

from ._listener.handling import internal_error
from .addresses import Namespace
from .protocol import CONTROL_CHANNEL_BODY_LIMIT, is_stripped_header
from .relayed import RelayedRequest, RelayedResponse

__all__ = ["serve_wsgi", "build_environ", "call_wsgi", "FileWrapper", "WSGIApp", "ErrorsStream"]

log: logging.Logger = logging.getLogger(__name__)
#: Where the application's ``wsgi.errors`` output goes.
app_log: logging.Logger = logging.getLogger(__name__ + ".errors")

ExcInfo = Tuple[Type[BaseException], BaseException, Optional[TracebackType]]
StartResponse = Callable[..., Callable[[bytes], None]]
WSGIApp = Callable[[Dict[str, Any], StartResponse], Iterable[bytes]]

#: A response body up to this size is collected and sent as bytes (on the
#: control channel when it fits); anything larger is streamed by rendezvous.
BUFFER_LIMIT = CONTROL_CHANNEL_BODY_LIMIT


class ErrorsStream:
    """``wsgi.errors``: a text stream whose lines go to the ``hybridconn.wsgi.errors`` logger."""

    def __init__(self, logger: logging.Logger = app_log, level: int = logging.ERROR) -> None:
        self._logger = logger
        self._level = level
        self._pending = ""

    def write(self, text: str) -> int:
        # Log whole lines only; a line written in pieces is one log record.
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line.strip():
                self._logger.log(self._level, "%s", line)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._pending.strip():
            self._logger.log(self._level, "%s", self._pending)
        self._pending = ""


class FileWrapper:
    """``wsgi.file_wrapper``: iterate a file in blocks; the body is streamed by rendezvous."""

    def __init__(self, filelike: IO[bytes], blksize: int = 64 * 1024) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close: Callable[[], None] = filelike.close

    def __iter__(self) -> Iterator[bytes]:
        while True:
            block = self.filelike.read(self.blksize)
            if not block:
                return
            yield block


def _wsgi_str(text: str, prefer_latin1: bool = False) -> str:
    """A native string holding bytes as latin-1 ("bytes-as-str"), as PEP 3333 requires.

    URL parts are UTF-8 on the wire, so they are re-encoded as UTF-8. Header
    values are latin-1 in HTTP; one that fits latin-1 is kept as it is, one
    that does not (the relay decoded UTF-8) becomes its UTF-8 bytes.
    """
    if prefer_latin1:
        try:
            text.encode("latin-1")
            return text
        except UnicodeEncodeError:
            pass
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


def _path_info(request: RelayedRequest, path: str) -> str:
    """The percent-decoded suffix after the hybrid connection name, as bytes-as-str.

    Decoded from the raw request target so that non-UTF-8 bytes survive; falls
    back to ``request.path`` when the target does not start with the name.
    """
    raw_path = request.target.partition("?")[0]
    if "://" in raw_path:
        raw_path = urlsplit(raw_path).path
    decoded = unquote_to_bytes(raw_path.encode("utf-8", "surrogateescape")).lstrip(b"/")
    name = path.strip("/").encode("utf-8")
    if decoded == name or decoded.startswith(name + b"/"):
        return decoded[len(name) :].decode("latin-1")
    return _wsgi_str(request.path)


def _header_key(name: str) -> str:
    return "HTTP_" + name.upper().replace("-", "_")


def build_environ(
    request: RelayedRequest,
    namespace: Union[str, Namespace],
    path: str,
    url_scheme: Optional[str] = None,
    remote_addr: Optional[str] = None,
    errors: Optional[Any] = None,
) -> Dict[str, Any]:
    """The PEP 3333 environ for a relayed request.

    :param namespace: the listener's namespace (``SERVER_NAME``/``SERVER_PORT``).
    :param path: the hybrid connection's name (``SCRIPT_NAME`` is ``/{path}``).
    :param url_scheme: ``https`` or ``http``; default from the namespace
        (``http`` for a plain ``ws://`` emulator).
    :param remote_addr: the client's address when known (the relay's ``remoteEndpoint``).
    :param errors: the ``wsgi.errors`` stream (default: an :class:`ErrorsStream`).
    """
    ns = Namespace.parse(namespace)
    scheme = url_scheme or ("https" if ns.secure else "http")
    if scheme not in ("http", "https"):
        raise ValueError(f"url_scheme must be 'http' or 'https', not {scheme!r}")
    body = request.body or b""
    streamed = request.streamed
    environ: Dict[str, Any] = {
        "REQUEST_METHOD": _wsgi_str(request.method),
        "SCRIPT_NAME": _wsgi_str("/" + path.strip("/")),
        "PATH_INFO": _path_info(request, path),
        "QUERY_STRING": _wsgi_str(request.query or ""),
        "CONTENT_LENGTH": _content_length(request) if streamed else str(len(body)),
        "SERVER_NAME": ns.host,
        "SERVER_PORT": str(ns.effective_port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        # A streamed body is read straight off the socket; a held one from memory.
        "wsgi.input": request.stream if streamed else io.BytesIO(body),
        "wsgi.errors": errors if errors is not None else ErrorsStream(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
        "hybridconn.request": request,
        "hybridconn.request_id": request.id,
        "hybridconn.via_rendezvous": request.via_rendezvous,
    }
    if streamed and not environ["CONTENT_LENGTH"]:
        # A chunked upload: no length, but the input ends where the body does (werkzeug reads to it).
        environ["wsgi.input_terminated"] = True
    if remote_addr:
        environ["REMOTE_ADDR"] = remote_addr
        if request.remote_port is not None:
            environ["REMOTE_PORT"] = str(request.remote_port)
    for name, value in request.headers.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        text = ",".join(_wsgi_str(str(v).strip(), prefer_latin1=True) for v in values)
        lowered = name.lower()
        if lowered == "content-type":
            environ["CONTENT_TYPE"] = text
            continue
        if lowered == "content-length":
            continue  # the body we hold (or the header, for a streamed one) is the truth
        if "_" in name:
            # "X_User" and "X-User" would both become HTTP_X_USER; such headers
            # can smuggle values past a proxy that checks one spelling.
            log.debug("dropping request header %r: underscores are ambiguous in WSGI", name)
            continue
        key = _header_key(name)
        environ[key] = environ[key] + "," + text if key in environ else text
    environ.setdefault("HTTP_HOST", ns.authority)  # the relay may strip the sender's Host (or forward it)
    return environ


def _content_length(request: RelayedRequest) -> str:
    """A streamed body's length as its sender announced it, or ``""`` (chunked: unknown)."""
    value = str(request.headers.get("Content-Length") or "").strip()
    return value if value.isdigit() else ""


class _Exchange:
    """One call of the application: start_response state and the written body."""

    def __init__(self) -> None:
        self.status: Optional[str] = None
        self.headers: List[Tuple[str, str]] = []
        self.headers_sent = False
        self.written: List[bytes] = []

    def start_response(
        self, status: str, headers: List[Tuple[str, str]], exc_info: Optional[ExcInfo] = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.headers_sent:
                    # PEP 3333: too late to change the response; let the error propagate.
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # break the frame <-> traceback cycle
        elif self.status is not None:
            raise AssertionError("start_response() called a second time without exc_info")
        self.status = _check_status(status)
        self.headers = _check_headers(headers)
        return self.write

    def write(self, data: bytes) -> None:
        if self.status is None:
            raise AssertionError("write() called before start_response()")
        if not isinstance(data, bytes):
            raise TypeError(f"write() takes bytes, not {type(data).__name__}")
        if data:
            self.headers_sent = True
            self.written.append(data)

    def note_chunk(self, chunk: bytes) -> bytes:
        if not isinstance(chunk, bytes):
            raise TypeError(f"a WSGI application must yield bytes, not {type(chunk).__name__}")
        if self.status is None:
            raise AssertionError("the application yielded a body before calling start_response()")
        if chunk:
            self.headers_sent = True
        return chunk

    def response(self, body: Any) -> RelayedResponse:
        if self.status is None:
            raise AssertionError("the WSGI application returned without calling start_response()")
        self.headers_sent = True  # from here on the answer is committed
        code, _, reason = self.status.partition(" ")
        return RelayedResponse(status=int(code), headers=_merge_headers(self.headers), body=body, reason=reason or None)


def _check_status(status: str) -> str:
    if not isinstance(status, str):
        raise TypeError(f"status must be a str such as '200 OK', not {type(status).__name__}")
    code = status.split(" ", 1)[0]
    if len(code) != 3 or not code.isdigit() or not 100 <= int(code) <= 599:
        raise ValueError(f"status must start with a 3-digit code and a space, not {status!r}")
    return status


def _check_headers(headers: List[Tuple[str, str]]) -> List[Tuple[str, str]]:
    if not isinstance(headers, list):
        raise TypeError(f"response headers must be a list of (name, value) tuples, not {type(headers).__name__}")
    for item in headers:
        if not (isinstance(item, tuple) and len(item) == 2 and all(isinstance(x, str) for x in item)):
            raise TypeError(f"each response header must be a (str, str) tuple, not {item!r}")
        if any(c in item[0] + item[1] for c in "\r\n\0") or not item[0] or ":" in item[0]:
            raise ValueError(f"response header {item[0]!r} has an illegal name or value")
    return list(headers)


def _merge_headers(headers: List[Tuple[str, str]]) -> Dict[str, str]:
    """Response headers as the relay carries them: a JSON object, one value per key.

    Repeated headers are joined with ", " (RFC 9110 5.3) -- except Set-Cookie,
    which must never be folded (RFC 6265 3): each further cookie goes under
    another letter case of the name (``set-cookie``, ``SET-COOKIE``, ...),
    distinct keys in JSON but the same header in HTTP, so each is written as
    its own header line. Connection headers (RFC 7230), which the relay
    forbids, are dropped.
    """
    merged: Dict[str, str] = {}
    canonical: Dict[str, str] = {}
    cookie_names: Optional[Iterator[str]] = None
    for name, value in headers:
        value = value.strip()  # Django's Set-Cookie comes with a leading space; OWS is not part of a value
        if is_stripped_header(name):
            continue
        if name.lower() == "set-cookie":
            cookie_names = cookie_names or _spellings(name)
            merged[next(cookie_names)] = value
            continue
        key = canonical.setdefault(name.lower(), name)
        merged[key] = merged[key] + ", " + value if key in merged else value
    return merged


def _spellings(name: str) -> Iterator[str]:
    """``name`` as written, then every other upper/lower-case spelling of it."""
    yield name
    letters = [i for i, c in enumerate(name) if c.isalpha()]
    for mask in range(1, 2 ** len(letters)):
        chars = list(name)
        for bit, index in enumerate(letters):
            if mask >> bit & 1:
                chars[index] = chars[index].swapcase()
        yield "".join(chars)


def _close(result: Any) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            log.exception("the WSGI application's iterable raised in close()")


class _StreamedBody:
    """The rest of a large or streaming body: iterated by the dispatcher, closes the app's iterable."""

    def __init__(self, exchange: _Exchange, head: List[bytes], rest: Iterator[bytes], result: Any) -> None:
        self._exchange = exchange
        self._head = head
        self._rest = rest
        self._result = result
        self._closed = False

    def __iter__(self) -> "_StreamedBody":
        return self

    def __next__(self) -> bytes:
        while self._head:
            chunk = self._head.pop(0)
            if chunk:
                return chunk
        if self._closed:
            raise StopIteration
        try:
            while True:
                chunk = self._exchange.note_chunk(next(self._rest))
                if chunk:
                    return chunk
        except StopIteration:
            self.close()
            raise
        except BaseException:
            # Headers are out: the listener logs this and drops the rendezvous socket.
            self.close()
            raise

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _close(self._result)

    def __del__(self) -> None:
        # A dispatcher that never iterated us (the sender went away) still owes the app its close().
        if not getattr(self, "_closed", True):
            self.close()


def _internal_error(environ: Dict[str, Any]) -> RelayedResponse:
    # The listener's own 500 for a crashed handler: the tracking id ties the
    # client's answer to the logged traceback, the exception stays here.
    return internal_error("WSGI application failed on %s %s", environ.get("REQUEST_METHOD"),
                          environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), logger=log)


def call_wsgi(app: WSGIApp, environ: Dict[str, Any], buffer_limit: int = BUFFER_LIMIT) -> RelayedResponse:
    """Run a WSGI application on ``environ`` and return its answer.

    A body that ends within ``buffer_limit`` bytes comes back as ``bytes``; a
    generator, a ``wsgi.file_wrapper`` or a longer body comes back as an
    iterable that the listener streams by rendezvous. The application's
    iterable is always closed: here, or by the streamed body when it ends.

    An application that fails before its first body byte gets a 500 with a
    tracking id; the traceback is logged, never sent.
    """
    response = _run_app(app, environ, buffer_limit)
    if environ.get("REQUEST_METHOD") == "HEAD" and response.body:
        # A HEAD answer has no body, whatever the app produced (as gunicorn and waitress do).
        _close(response.body)
        response.body = b""
    return response


def _run_app(app: WSGIApp, environ: Dict[str, Any], buffer_limit: int) -> RelayedResponse:
    exchange = _Exchange()
    result: Any = None
    try:
        result = app(environ, exchange.start_response)
        if isinstance(result, (list, tuple)):
            body = exchange.written + [exchange.note_chunk(chunk) for chunk in result]
            _close(result)
            total = sum(len(chunk) for chunk in body)
            return exchange.response(b"".join(body) if total <= buffer_limit else body)
        # A generator or a file is meant to stream: start sending after its first chunk.
        streaming = isinstance(result, FileWrapper) or inspect.isgenerator(result)
        head, rest = _take(exchange, iter(result), 1 if streaming else buffer_limit)
        if rest is None:
            _close(result)
            return exchange.response(b"".join(exchange.written + head))
        return exchange.response(_StreamedBody(exchange, exchange.written + head, rest, result))
    except Exception:
        _close(result)
        return _internal_error(environ)


def _take(exchange: _Exchange, iterator: Iterator[bytes], limit: int) -> Tuple[List[bytes], Optional[Iterator[bytes]]]:
    """Read chunks until ``limit`` bytes arrived (and return the rest) or the body ended (rest is None)."""
    head: List[bytes] = []
    total = sum(len(chunk) for chunk in exchange.written)
    while total < limit:
        try:
            chunk = exchange.note_chunk(next(iterator))
        except StopIteration:
            return head, None
        head.append(chunk)
        total += len(chunk)
    return head, iterator


def serve_wsgi(
    app: WSGIApp,
    listener: Any,
    url_scheme: Optional[str] = None,
    buffer_limit: int = BUFFER_LIMIT,
) -> Callable[[RelayedRequest], RelayedResponse]:
    """Serve ``app`` for every HTTP request that reaches ``listener``.

    Registers (and returns) an ``on_request`` handler; the application runs in
    the listener's handler pool, so it must be thread-safe
    (``wsgi.multithread`` is True). Call before or after ``listener.open()``.

    :param url_scheme: override ``wsgi.url_scheme`` (default ``https``, or
        ``http`` for a plain-``ws://`` namespace such as the emulator).
    """
    namespace = Namespace.parse(listener.namespace)
    path = str(listener.path).strip("/")

    def handle_wsgi_request(request: RelayedRequest) -> RelayedResponse:
        environ = build_environ(request, namespace, path, url_scheme=url_scheme, remote_addr=request.remote_address)
        try:
            return call_wsgi(app, environ, buffer_limit=buffer_limit)
        finally:
            environ["wsgi.errors"].flush()

    listener.on_request(handle_wsgi_request)
    return handle_wsgi_request
