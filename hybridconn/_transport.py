"""Opening WebSockets with websocket-client: the one place its errors are translated.

Everything that crosses from websocket-client, ``socket`` or ``ssl`` into
hybridconn on a handshake passes through :func:`open_websocket`, which raises
only hybridconn errors (``raise ... from exc``) and never shows a token.
"""

from __future__ import annotations

import enum
import logging
import socket
import ssl
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple, Union
from urllib.parse import urlsplit

import websocket

from ._protocol.status import standard_phrase
from ._redact import install_redaction, redact_url
from .auth import AUTH_HEADER
from .exceptions import (
    ConfigurationError,
    HybridConnectionError,
    RelayConnectionError,
    RelayTimeoutError,
    error_for_status,
)

__all__ = [
    "Dialer", "open_websocket", "ws_ssl_options", "ws_proxy_options", "translate_ws_error", "Verify", "HandshakeSet",
    "check_verify",
]

log = logging.getLogger(__name__)

Verify = Union[bool, str]

_warned_insecure = threading.Event()

# websocket-client's trace and urllib3's debug lines would show tokens: filter them at the source.
install_redaction()


def warn_insecure_once() -> None:
    """Log once per process that TLS verification is off."""
    if not _warned_insecure.is_set():
        _warned_insecure.set()
        log.warning("TLS certificate verification is disabled (verify=False); use only against a test relay")


def check_verify(verify: Any) -> Verify:
    """``verify`` as given, checked: True, False (logged once as a warning) or an existing CA bundle path."""
    if verify is False:
        warn_insecure_once()
        return False
    if verify is True:
        return True
    if isinstance(verify, (str, os.PathLike)):
        path = os.fspath(verify)
        if not os.path.isfile(path):
            raise ConfigurationError(f"verify={path!r}: no such CA bundle file")
        return path
    raise ConfigurationError("verify must be True, False or the path of a CA bundle")


def ws_ssl_options(verify: Verify) -> Dict[str, Any]:
    """websocket-client ``sslopt`` for ``verify`` (True, False, or a CA bundle path)."""
    if verify is False:
        warn_insecure_once()
        return {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
    options: Dict[str, Any] = {"cert_reqs": ssl.CERT_REQUIRED, "check_hostname": True}
    if isinstance(verify, str):
        options["ca_certs"] = verify
    return options


# A NO_PROXY list that matches no host name or address (websocket-client reads
# the environment's list when given an empty one).
_NO_HOST = ["-"]


def ws_proxy_options(proxy: Optional[str]) -> Dict[str, Any]:
    """websocket-client proxy options for an explicit ``http://host:port`` proxy.

    Without one, websocket-client reads ``https_proxy``/``http_proxy`` and
    ``no_proxy`` from the environment itself.
    """
    if not proxy:
        return {}
    parts = urlsplit(proxy if "://" in proxy else "http://" + proxy)
    if not parts.hostname:
        raise ConfigurationError("proxy has no host; expected http://host:port")
    try:
        port = parts.port or 8080
    except ValueError:
        raise ConfigurationError("proxy has an invalid port; expected http://host:port") from None
    options: Dict[str, Any] = {
        "http_proxy_host": parts.hostname,
        "http_proxy_port": port,
        "proxy_type": "http",
        # An explicit proxy is used for every host, as requests does; without
        # this, websocket-client would still skip it for hosts in NO_PROXY.
        "http_no_proxy": _NO_HOST,
    }
    if parts.username:
        options["http_proxy_auth"] = (parts.username, parts.password or "")
    return options


class _Unset(enum.Enum):
    """A handshake's timeout when the caller names none: the dialer's ``connect_timeout``."""

    CONNECT_TIMEOUT = "connect_timeout"


@dataclass(frozen=True)
class Dialer:
    """How one listener or client reaches the relay: built once, passed to every part that dials.

    :ivar verify: TLS verification (True, False, or a CA bundle path).
    :ivar proxy: an explicit ``http://[user:pass@]host:port`` proxy, or None (environment).
    :ivar connect_timeout: seconds for a handshake.
    :ivar io_timeout: socket timeout for a stalled frame read or send on an open connection.
    :ivar token_in_query: put the token in ``sb-hc-token`` instead of the ``ServiceBusAuthorization`` header.
    :ivar handshakes: the owner's handshakes in progress, so that closing it ends them at once.
    """

    verify: Verify = True
    proxy: Optional[str] = None
    connect_timeout: float = 30.0
    io_timeout: float = 30.0
    token_in_query: bool = False
    handshakes: Optional["HandshakeSet"] = field(default=None, compare=False, repr=False)

    def place_token(self, token: Optional[str]) -> Tuple[Optional[str], Optional[Dict[str, str]]]:
        """Where a token goes on a handshake: ``(query token, headers)``; one of them is None."""
        if not token:
            return None, None
        if self.token_in_query:
            return token, None
        return None, {AUTH_HEADER: token}

    def open(
        self,
        url: str,
        *,
        what: str,
        headers: Optional[Mapping[str, str]] = None,
        subprotocols: Optional[Sequence[str]] = None,
        timeout: Union[float, None, _Unset] = _Unset.CONNECT_TIMEOUT,
    ) -> websocket.WebSocket:
        """Complete a WebSocket handshake to ``url`` (see :func:`open_websocket`).

        :param timeout: seconds for this handshake; by default ``connect_timeout``; None waits without limit.
        """
        return open_websocket(
            url,
            headers=headers,
            subprotocols=subprotocols,
            timeout=self.connect_timeout if isinstance(timeout, _Unset) else timeout,
            verify=self.verify,
            proxy=self.proxy,
            what=what,
            handshakes=self.handshakes,
        )


def open_websocket(
    url: str,
    *,
    headers: Optional[Mapping[str, str]] = None,
    subprotocols: Optional[Sequence[str]] = None,
    timeout: Optional[float] = 30.0,
    verify: Verify = True,
    proxy: Optional[str] = None,
    what: str = "connect",
    handshakes: Optional["HandshakeSet"] = None,
) -> websocket.WebSocket:
    """Complete a WebSocket handshake, or raise a hybridconn error.

    A refused handshake raises the error matching its status (see
    :func:`~hybridconn.exceptions.error_for_status`); the caller decides what
    a status means where it differs (a reject expects 410).

    :param handshakes: tracks this handshake while it runs, so its owner can
        cut it short (:meth:`HandshakeSet.abort_all`) instead of waiting ``timeout``.
    """
    ws = websocket.WebSocket(
        enable_multithread=True,
        skip_utf8_validation=True,  # text is decoded (and so validated) in C by HybridConnection
        sslopt=ws_ssl_options(verify) if url.startswith("wss:") else None,
    )
    header_list: List[str] = [f"{name}: {value}" for name, value in (headers or {}).items()]
    # redirect_limit=0: websocket-client would follow up to 3 handshake redirects (even wss -> ws)
    # and send the ServiceBusAuthorization header to wherever they point. The relay never
    # redirects a handshake, so one is refused and the token never goes anywhere else.
    options: Dict[str, Any] = {"header": header_list, "timeout": timeout, "suppress_origin": True,
                               "redirect_limit": 0}
    if subprotocols:
        options["subprotocols"] = list(subprotocols)
    options.update(ws_proxy_options(proxy))
    if handshakes is not None:
        handshakes.add(ws, what)
    try:
        ws.connect(url, **options)
    except BaseException as exc:
        _close_quietly(ws)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        if handshakes is not None and handshakes.aborted:
            raise RelayConnectionError(f"{what} handshake cancelled: shutting down") from exc
        redirect = _redirect_refused(ws, url, what)
        if redirect is not None:
            raise redirect from exc
        raise translate_ws_error(exc, url, what) from exc
    finally:
        if handshakes is not None:
            handshakes.discard(ws)
    if handshakes is not None and handshakes.aborted:  # finished just as its owner shut down
        _close_quietly(ws)
        raise RelayConnectionError(f"{what} handshake cancelled: shutting down")
    return ws


class HandshakeSet:
    """Handshakes in progress, so that an owner shutting down can end them at once.

    A handshake blocks in connect/recv for up to its timeout; shutting its
    socket down wakes it (it then raises). Once :meth:`abort_all` has run,
    new handshakes fail at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: Set[websocket.WebSocket] = set()
        self.aborted: bool = False

    def add(self, ws: websocket.WebSocket, what: str = "connect") -> None:
        with self._lock:
            if not self.aborted:
                self._running.add(ws)
                return
        raise RelayConnectionError(f"{what} handshake cancelled: shutting down")

    def discard(self, ws: websocket.WebSocket) -> None:
        with self._lock:
            self._running.discard(ws)

    def abort_all(self) -> int:
        """Refuse new handshakes and wake the running ones; how many were running."""
        with self._lock:
            self.aborted = True
            running = list(self._running)
        for ws in running:
            sock = ws.sock
            if sock is not None:
                try:
                    # The plain socket's shutdown (an SSLSocket's would drop its SSL object under the
                    # reading thread); it wakes a blocked connect() or recv(). The fd is closed by
                    # the handshake's own thread.
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:
                    pass
        return len(running)


def translate_ws_error(exc: BaseException, url: str = "", what: str = "connect") -> HybridConnectionError:
    """The hybridconn error for a websocket-client, socket or ssl failure."""
    where = redact_url(_without_query(url)) if url else "the relay"
    if isinstance(exc, HybridConnectionError):
        return exc
    if isinstance(exc, websocket.WebSocketBadStatusException):
        reason = _with_body_text(_status_reason(exc), int(exc.status_code), getattr(exc, "resp_body", None))
        return error_for_status(int(exc.status_code), redact_url(reason))
    if isinstance(exc, (websocket.WebSocketTimeoutException, socket.timeout)):
        return RelayTimeoutError(f"timed out during {what} to {where}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return RelayConnectionError(
            f"TLS certificate verification failed for {where}: {exc.verify_message or exc.reason}; "
            "pass verify='/path/to/ca.pem' to trust a self-signed relay (such as the emulator)"
        )
    if isinstance(exc, ssl.SSLError):
        return RelayConnectionError(f"TLS error during {what} to {where}: {exc.reason or exc}")
    if isinstance(exc, websocket.WebSocketProxyException):
        return RelayConnectionError(f"proxy refused the tunnel to {where}: {exc}")
    if isinstance(exc, (ConnectionError, OSError, websocket.WebSocketException)):
        return RelayConnectionError(f"could not {what} to {where}: {type(exc).__name__}: {exc}")
    return RelayConnectionError(f"could not {what} to {where}: {type(exc).__name__}")


def _status_reason(exc: websocket.WebSocketBadStatusException) -> str:
    """The refusal's reason phrase.

    Older websocket-client releases (1.9.0 among them) keep it only in the message
    (``Handshake status 404 Not Found -+-+- {headers} -+-+- body``).
    """
    reason = getattr(exc, "status_message", None)
    if reason is None:
        prefix = f"Handshake status {exc.status_code} "
        text = str(exc)
        reason = text[len(prefix) :].split(" -+-+- ", 1)[0] if text.startswith(prefix) else ""
    if isinstance(reason, bytes):
        reason = reason.decode("latin-1")
    return str(reason)


#: At most this much of a refusal's body goes into an error message.
_BODY_TEXT_LIMIT = 200


def _with_body_text(reason: str, status: int, body: Optional[bytes]) -> str:
    """``reason``, or, when it is only the standard phrase, the phrase and the body's first line.

    The service puts its description in the reason phrase; servers that do not (the emulator's
    per-client cap: ``503 Service Unavailable`` with "Too many connections from this client" in the
    body, a proxy, a load balancer) would otherwise leave only the bare phrase in the error.
    """
    if not body or (reason and reason != standard_phrase(status)):
        return reason
    lines = body[:_BODY_TEXT_LIMIT].decode("utf-8", "replace").strip().splitlines()
    first = lines[0].strip() if lines else ""
    if not first or not first.isprintable() or first.startswith(("<", "{")):  # not HTML, not JSON
        return reason
    return f"{reason}: {first}" if reason else first


def _redirect_refused(ws: websocket.WebSocket, url: str, what: str) -> Optional[HybridConnectionError]:
    """The error for a handshake answered with a redirect (never followed), or None."""
    response = getattr(ws, "handshake_response", None)
    status = getattr(response, "status", None)
    if status is None or not 300 <= int(status) < 400:
        return None
    location = (getattr(response, "headers", None) or {}).get("location") or "nowhere"
    return RelayConnectionError(
        f"the {what} handshake to {redact_url(_without_query(url))} was redirected ({int(status)}) to "
        f"{redact_url(_without_query(str(location)))}; handshake redirects are not followed, so the token "
        "is never sent anywhere else"
    )


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]


def _close_quietly(ws: websocket.WebSocket) -> None:
    try:
        ws.shutdown()
    except Exception:  # noqa: BLE001 - best effort on a socket that failed already
        pass
