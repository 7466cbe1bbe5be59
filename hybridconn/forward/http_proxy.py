"""HttpForwarder: a reverse proxy from a hybrid connection to a web server (azbridge ``-H``).

Every HTTP request relayed to the hybrid connection is re-issued to the
upstream (``http(s)://host:port[/path]``) with a pooled :class:`requests.Session`,
and its answer relayed back: the way to put Jenkins, Grafana or any
non-Python web app behind a hybrid connection. The rules (path, headers,
redirects) are in :mod:`hybridconn.forward.http_rules`.

Bodies stream both ways in bounded memory: the listener runs with
``stream_request_bodies=True`` and the upload is sent upstream as it arrives
(chunked, since the relay never tells a listener the length); the download is
read from the upstream in 64 KiB pieces as the relay takes them.

The relay reserves 502 and 504 for itself (no listener, no answer in time),
so an upstream that cannot be reached, or does not answer within
``read_timeout``, is answered **503** with the reason in the status line; an
upstream's own 502/504 is passed on as 503 too, with ``X-Upstream-Status``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Dict, Iterator, Optional, Union

import requests
from requests.adapters import HTTPAdapter

from ..addresses import Namespace
from ..listener import HybridConnectionListener
from ..relayed import RelayedRequest, RelayedResponse
from .http_rules import Upstream, relay_response_headers, upstream_request_headers, upstream_target

__all__ = ["HttpForwarder"]

log: logging.Logger = logging.getLogger(__name__)

#: Read size from the upstream, and the chunk sent on: one relay fragment.
CHUNK = 64 * 1024
#: A response body announced at most this long is read whole (it then fits the control channel).
INLINE_LIMIT = 32 * 1024
#: Upstream statuses a listener may not send (the relay's own): passed on as 503.
_RESERVED = (502, 504)


class HttpForwarder:
    """Relay the HTTP requests of a hybrid connection to ``upstream``.

    :param listener: the hybrid connection's listener; its ``on_request`` is taken. Build it with
        ``stream_request_bodies=True`` (as :meth:`from_connection_string` does) for bounded memory.
    :param upstream: where to send requests (:func:`~.http_rules.parse_http_spec` makes one).
    :param verify: TLS verification of an ``https`` upstream: True, False (azbridge's ``Insecure``)
        or a CA bundle path.
    :param connect_timeout: seconds to connect to the upstream.
    :param read_timeout: seconds the upstream may be silent (for its answer, or mid-body).
    :param pool_size: connections kept to the upstream (default: the listener's handler threads).
    """

    def __init__(self, listener: HybridConnectionListener, upstream: Upstream, *,
                 verify: Union[bool, str] = True, connect_timeout: float = 30.0, read_timeout: float = 60.0,
                 pool_size: Optional[int] = None) -> None:
        self.listener = listener
        self.upstream = upstream
        self.verify = verify
        self.timeout = (connect_timeout, read_timeout)
        namespace = Namespace.parse(listener.namespace)
        scheme = "https" if namespace.secure else "http"
        port = "" if namespace.port is None else f":{namespace.port}"
        self._relay_host = namespace.host + port
        self._proto = scheme
        self._prefix = "/" + listener.path.strip("/")
        self.relay_url: str = f"{scheme}://{self._relay_host}{self._prefix}"
        size = pool_size or int(getattr(listener, "max_workers", 0) or 16)
        self._session = requests.Session()
        self._session.trust_env = False  # the upstream is local or on the LAN: no proxy from the environment
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=size, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._lock = threading.Lock()
        self._closed = False
        #: Requests relayed, upstream failures, body bytes each way.
        self.counters: Dict[str, int] = {"requests": 0, "upstream_errors": 0, "bytes_up": 0, "bytes_down": 0}
        listener.on_request(self.handle)

    @classmethod
    def from_connection_string(cls, connection_string: str, upstream: Upstream, *, verify: Union[bool, str] = True,
                               connect_timeout: float = 30.0, read_timeout: float = 60.0,
                               **listener_options: Any) -> "HttpForwarder":
        """A forwarder with its own listener on ``upstream.relay`` (streaming request bodies)."""
        listener_options.setdefault("stream_request_bodies", True)
        listener_options.setdefault("path", upstream.relay)
        listener = HybridConnectionListener.from_connection_string(connection_string, **listener_options)
        return cls(listener, upstream, verify=verify, connect_timeout=connect_timeout, read_timeout=read_timeout)

    def __repr__(self) -> str:
        return f"<HttpForwarder {self.relay_url} -> {self.upstream.origin}{self.upstream.base_path}>"

    def __enter__(self) -> "HttpForwarder":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self, timeout: float = 30.0) -> "HttpForwarder":
        """Open the listener; returns once it is online."""
        self.listener.open(timeout=timeout)
        log.info("forwarding HTTP %s to %s%s", self.relay_url, self.upstream.origin, self.upstream.base_path)
        return self

    def close(self, timeout: float = 10.0) -> bool:
        """Close the listener (requests in flight get their answer or are cut off by ``timeout``)."""
        with self._lock:
            self._closed = True
        try:
            return self.listener.close(timeout=timeout)
        finally:
            self._session.close()

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    # ------------------------------------------------------------------ one request

    def handle(self, request: RelayedRequest) -> RelayedResponse:
        """Re-issue ``request`` upstream; its answer, or a 503 naming what failed."""
        self._count("requests")
        url = self.upstream.url(upstream_target(request.target, self.listener.path))
        headers = upstream_request_headers(request.headers, remote_address=request.remote_address,
                                           relay_host=self._relay_host, proto=self._proto, prefix=self._prefix)
        body: Any = self._body_up(request) if request.streamed else (request.body or None)
        prepared = self._session.prepare_request(requests.Request(request.method, url, headers=headers, data=body))
        prepared.url = url  # byte for byte: requests would re-quote the path and query
        try:
            upstream = self._session.send(prepared, stream=True, allow_redirects=False, timeout=self.timeout,
                                          verify=self.verify)
        except requests.exceptions.Timeout as exc:
            return self._failed(request, "Gateway Timeout: the upstream did not answer in time", exc)
        except requests.exceptions.RequestException as exc:
            return self._failed(request, "Bad Gateway: the upstream could not be reached", exc)
        return self._relay_back(request, upstream)

    def _body_up(self, request: RelayedRequest) -> Iterator[bytes]:
        stream = request.stream
        assert stream is not None  # a streamed request always has its stream
        while True:
            chunk = stream.read(CHUNK)
            if not chunk:
                return
            self._count("bytes_up", len(chunk))
            yield chunk

    def _relay_back(self, request: RelayedRequest, upstream: requests.Response) -> RelayedResponse:
        headers = relay_response_headers(upstream.raw.headers.items(), self.upstream, self.relay_url)
        status = upstream.status_code
        if status in _RESERVED or status < 200:
            headers["X-Upstream-Status"] = str(status)
            log.warning("forward http %s %s: the upstream answered %d, relayed as 503", request.method,
                        request.target, status)
            status = 503
        reason = upstream.reason if status == upstream.status_code else None
        length = str(upstream.headers.get("Content-Length", ""))
        if length.isdigit() and int(length) <= INLINE_LIMIT:
            try:
                data = upstream.raw.read(decode_content=False) or b""
            finally:
                upstream.close()
            self._count("bytes_down", len(data))
            return RelayedResponse(status=status, headers=headers, body=data, reason=reason)
        return RelayedResponse(status=status, headers=headers, body=self._body_down(upstream), reason=reason)

    def _body_down(self, upstream: requests.Response) -> Iterator[bytes]:
        """The upstream's body as it arrives, undecoded (Content-Encoding is passed on); closes it."""
        try:
            for chunk in upstream.raw.stream(CHUNK, decode_content=False):
                if chunk:
                    self._count("bytes_down", len(chunk))
                    yield chunk
        except Exception as exc:  # noqa: BLE001 - the body broke off: the relay's sender sees it cut
            self._count("upstream_errors")
            log.warning("forward http: the upstream's body broke off: %s", exc)
            raise
        finally:
            upstream.close()

    def _failed(self, request: RelayedRequest, text: str, exc: BaseException) -> RelayedResponse:
        self._count("upstream_errors")
        log.warning("forward http %s %s -> %s%s: %s (%s)", request.method, request.target, self.upstream.origin,
                    self.upstream.base_path, text, type(exc).__name__)
        return RelayedResponse(status=503, headers={"Content-Type": "text/plain; charset=utf-8"},
                               body=text.encode("utf-8"), reason=text)
