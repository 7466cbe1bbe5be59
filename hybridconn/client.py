"""HybridConnectionClient: the sender role, for blocking code.

``connect()`` opens a relayed WebSocket (a :class:`~hybridconn.connection.HybridConnection`,
the same type a listener accepts); ``request()`` and ``session()`` send HTTP
through the relay with ``requests``, every request signed by :class:`~hybridconn.auth.SasAuth`.

Telling the relay's refusals from the listener's
-------------------------------------------------
*HTTP*: the relay adds a ``Via`` header to every response that comes from a
listener (spec, "HTTP request protocol"), so a response with ``Via`` is
returned untouched whatever its status, and only a response without one is
read as a relay error.

*WebSocket*: a listener's reject reaches the sender as the failed handshake's
status and description, so a status alone cannot say who refused. The relay's
own refusals use a handful of statuses (401, 403, 404, 500, 502, 503, 504,
408) and their descriptions carry a ``TrackingId``; anything else - another
status, or one of those with the listener's bare description - is the
listener's reject, :class:`~hybridconn.exceptions.ConnectionRejectedError`.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

import requests
import websocket

from . import addresses
from ._http import (
    QueryTokenAuth,
    RelaySession,
    merged_headers,
    relay_error,
    scrub_secrets,
    translate_requests_error,
)
from ._endpoint import RelayEndpoint
from ._keepalive import PongTimer, check_keepalive
from ._transport import Dialer, Verify, check_verify
from .addresses import Namespace, QueryArg, redact_url
from .auth import SasAuth, TokenProvider, TokenProviderLike, as_token_provider
from .connection import MAX_MESSAGE_SIZE, HybridConnection
from .exceptions import (
    ConnectionRejectedError,
    HybridConnectionError,
    ProtocolError,
    RelayTimeoutError,
)

__all__ = ["HybridConnectionClient", "DEFAULT_CONNECT_TIMEOUT", "DEFAULT_HTTP_TIMEOUT"]

log: logging.Logger = logging.getLogger(__name__)

#: The relay waits up to 30 s for a listener to accept, plus network time; .NET's sender uses 70 s too.
DEFAULT_CONNECT_TIMEOUT = 70.0
#: requests' (connect, read) timeout when the caller gives none: the relay itself answers 504 after 60 s.
DEFAULT_HTTP_TIMEOUT: Tuple[float, float] = (30.0, 70.0)

# Statuses the relay refuses a connect handshake with; see the module docstring.
_RELAY_HANDSHAKE_STATUSES = frozenset({401, 403, 404, 408, 500, 502, 503, 504})

#: An HTTP method is a token (RFC 9110 section 5.6.2): a path such as "/x" in its place is a misplaced suffix.
_METHOD = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class HybridConnectionClient(RelayEndpoint):
    """The sender side of one hybrid connection.

    :param namespace: a host name (``contoso.servicebus.windows.net``) or a
        base URL (``ws://127.0.0.1:9350``, ``wss://...``).
    :param path: the hybrid connection's name.
    :param token_provider: a :class:`~hybridconn.auth.TokenProvider`, a callable
        ``audience -> (token, expires_on)``, or None for anonymous senders.
    :param verify: TLS verification: True (system trust), a CA bundle path,
        or False (logged once as a warning).
    :param proxy: an ``http://[user:pass@]host:port`` proxy used for every
        WebSocket and HTTP request. Without it, ``HTTPS_PROXY``/``HTTP_PROXY``
        and ``NO_PROXY`` from the environment apply.
    :param token_in_query: send the token as ``sb-hc-token`` in the query
        string instead of the ``ServiceBusAuthorization`` header (for proxies
        that strip headers).
    :param raise_for_relay: raise typed errors for the relay's own HTTP error
        responses (401/403/404/500/502/503/504 without ``Via``); False returns them.
    :param session: a ``requests.Session`` to send HTTP through (for its
        adapters or pooling). Its ``auth`` is set; it is not closed by :meth:`close`.
    """

    #: ``from_connection_string(cs, token_provider=None)`` makes an anonymous sender.
    anonymous_allowed = True

    def __init__(
        self,
        namespace: Union[str, Namespace],
        path: str,
        token_provider: TokenProviderLike = None,
        *,
        verify: Verify = True,
        proxy: Optional[str] = None,
        token_in_query: bool = False,
        raise_for_relay: bool = True,
        session: Optional[requests.Session] = None,
    ) -> None:
        self.namespace: Namespace = Namespace.parse(namespace)
        self.path: str = addresses.check_entity_path(path)
        self.token_provider: Optional[TokenProvider] = as_token_provider(token_provider)
        #: How this client reaches the relay (TLS, proxy, where the token goes).
        self.dialer: Dialer = Dialer(verify=check_verify(verify), proxy=proxy or None, token_in_query=token_in_query)
        self.raise_for_relay = raise_for_relay
        #: The audience every token is minted for: the hybrid connection, so it covers every suffix.
        self.audience: str = addresses.token_audience(self.namespace, self.path)
        self._user_session = session
        self._session: Optional[requests.Session] = None
        self._lock = threading.Lock()
        self._keepalive: Optional[PongTimer] = None  # one timer thread for every connection's keep-alive

    # ------------------------------------------------------------------ addresses

    def ws_url(self, suffix: str = "", query: QueryArg = None, id: Optional[str] = None) -> str:
        """The sender's WebSocket address (``.../$hc/{path}[/suffix]?...&sb-hc-action=connect``), no token."""
        suffix_path, text = _split_suffix(suffix, query)
        return addresses.connect_url(self.namespace, self.path, suffix=suffix_path, query=text, id=id)

    def http_url(self, suffix: str = "", query: QueryArg = None) -> str:
        """The HTTP address ``http[s]://ns/{path}[/suffix][?query]``.

        ``suffix`` is a plain path (it is percent-encoded here) and may end in
        ``?query``; ``query`` adds parameters. ``sb-hc-*`` names are refused:
        the relay keeps them for itself.
        """
        suffix_path, text = _split_suffix(suffix, query)
        return addresses.http_url(self.namespace, self.path, suffix=suffix_path, query=text)

    # ------------------------------------------------------------------ WebSocket

    def connect(
        self,
        suffix: str = "",
        headers: Optional[Mapping[str, str]] = None,
        subprotocols: Union[None, str, Sequence[str]] = None,
        *,
        query: QueryArg = None,
        id: Optional[str] = None,
        timeout: Optional[float] = DEFAULT_CONNECT_TIMEOUT,
        max_message_size: Optional[int] = MAX_MESSAGE_SIZE,
        keepalive: Optional[float] = None,
    ) -> HybridConnection:
        """Open a relayed WebSocket to a listener: ``client.connect("/chat", headers={...})``.

        :param suffix: a path after the hybrid connection's name (may end in
            ``?query``); first, as in :meth:`request`.
        :param headers: extra handshake headers; the listener sees them (as its ``conn.headers``).
        :param subprotocols: offered ``Sec-WebSocket-Protocol`` values; the
            negotiated one is ``conn.subprotocol``.
        :param query: application query parameters (no ``sb-hc-*``). It and the
            parameters after it are keyword-only.
        :param id: the tracking id (``sb-hc-id``) the listener sees; a new UUID by default.
        :param timeout: seconds to wait for the relay and the listener to complete the handshake.
        :param max_message_size: longest message this connection takes (default 16 MiB); a longer
            one closes it with 1009 and raises ``ConnectionClosed``. None: no limit.
        :param keepalive: seconds between unsolicited Pongs sent on the connection while it is
            open, so an idle one survives the relay's idle drop (about 4 min, azure-relay #33);
            None: none. One thread per client serves them all, until :meth:`close`.
        :raises AuthenticationError: 401.
        :raises AuthorizationError: 403.
        :raises EndpointNotFoundError: 404, no such hybrid connection.
        :raises ListenerUnavailableError: no listener online: 502/503, or 404 "There are no
            listeners connected" as Azure answers, raised as ``NoListenerConnectedError``
            (also an ``EndpointNotFoundError``).
        :raises ConnectionRejectedError: the listener rejected the connection.
        :raises RelayTimeoutError: the handshake did not complete in time.
        :raises RelayConnectionError: the relay (or proxy) was unreachable, or TLS failed.
        :raises ProtocolError: the listener chose a subprotocol that was not offered.
        :raises TypeError: an argument of the wrong type (say, headers passed where the suffix goes).
        """
        _check_connect_args(suffix, headers, subprotocols, id, timeout)
        keepalive = check_keepalive(keepalive)
        connection_id = id or str(uuid.uuid4())
        suffix_path, text = _split_suffix(suffix, query)
        query_token, auth_header = self.dialer.place_token(self._token())
        url = addresses.connect_url(
            self.namespace, self.path, suffix=suffix_path, query=text, id=connection_id, token=query_token
        )
        offered = [subprotocols] if isinstance(subprotocols, str) else list(subprotocols or [])
        # Offered as a plain header, checked by _negotiated_subprotocol: websocket-client
        # would fail a handshake whose listener picked none, which RFC 6455 allows.
        protocol_header = {"Sec-WebSocket-Protocol": ", ".join(offered)} if offered else None
        log.debug("connecting to %s", redact_url(url))
        try:
            ws = self.dialer.open(
                url,
                what="connect",
                # The caller's headers win: one may bring its own ServiceBusAuthorization.
                headers=merged_headers(auth_header, protocol_header, headers),
                timeout=timeout,
            )
        except HybridConnectionError as exc:
            scrub_secrets(exc)
            error = _connect_error(exc)
            if error is exc:
                raise
            raise error from exc.__cause__
        subprotocol = _negotiated_subprotocol(ws, offered)
        log.debug("connected to %s (id %s)", redact_url(url.split("?", 1)[0]), connection_id)
        conn = HybridConnection(
            ws,
            id=connection_id,
            subprotocol=subprotocol,
            path="/" + suffix_path.lstrip("/") if suffix_path.strip("/") else "",
            query=text,
            max_message_size=max_message_size,
        )
        if keepalive is not None:
            with self._lock:
                if self._keepalive is None:
                    self._keepalive = PongTimer(f"hybridconn-client-keepalive-{self.path}")
                self._keepalive.add(conn, keepalive)
        return conn

    # ------------------------------------------------------------------ HTTP

    def session(self) -> requests.Session:
        """The ``requests.Session`` this client sends through; it signs every request.

        Use it with plain requests code (``client.session().get(client.http_url("/x"))``).
        Responses come back as requests returns them; only :meth:`request`
        turns relay errors into exceptions.
        """
        with self._lock:
            if self._session is None:
                session = self._user_session or RelaySession(proxy=self.proxy, verify=self.verify)
                session.auth = self._requests_auth()
                self._session = session
            return self._session

    def request(self, method: str, suffix: str = "", **kwargs: Any) -> requests.Response:
        """Send an HTTP request to the listener and return its response.

        ``kwargs`` are ``requests``' (``data``, ``json``, ``headers``,
        ``params``, ``stream``, ``timeout``...). Redirects are not followed
        unless ``allow_redirects=True``: the listener's response comes back as sent.

        :raises AuthenticationError, AuthorizationError, EndpointNotFoundError:
            the relay's 401/403/404.
        :raises ListenerUnavailableError: 502/503 (or ``NoListenerConnectedError``, a 404 saying
            no listener is connected or qualifies), no listener is online.
        :raises RelayTimeoutError: the relay's 504, or no answer within ``timeout``.
        :raises RelayConnectionError: the relay (or proxy) was unreachable, or TLS failed.
        """
        if not isinstance(method, str) or not _METHOD.match(method):
            raise TypeError(f"request() takes the HTTP method first (request('GET', '/path')), not {method!r:.40}")
        url = self.http_url(suffix)
        kwargs.setdefault("timeout", DEFAULT_HTTP_TIMEOUT)
        kwargs.setdefault("allow_redirects", False)
        if self.proxy:
            kwargs.setdefault("proxies", {"http": self.proxy, "https": self.proxy})
        if self.verify is not True:
            kwargs.setdefault("verify", self.verify)
        session = self.session()
        log.debug("%s %s", method, redact_url(url))
        try:
            response = session.request(method, url, **kwargs)
        except requests.RequestException as exc:
            error = translate_requests_error(exc, url, method)
            scrub_secrets(exc)
            raise error from exc
        if self.raise_for_relay:
            failure = relay_error(response, read_body=not kwargs.get("stream"))
            if failure is not None:
                response.close()
                raise failure
        return response

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the HTTP session (unless the caller supplied it) and stop the connections'
        keep-alive (the connections stay open). Safe to call twice."""
        with self._lock:
            session, self._session = self._session, None
            keepalive, self._keepalive = self._keepalive, None
        if keepalive is not None:
            keepalive.close()
        if session is not None and session is not self._user_session:
            session.close()

    def __enter__(self) -> "HybridConnectionClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<HybridConnectionClient {self.namespace.ws_base}/{self.path}>"

    # ------------------------------------------------------------------ internals

    def _token(self) -> Optional[str]:
        if self.token_provider is None:
            return None
        token, _ = self.token_provider.get_token(self.audience)
        return token

    def _requests_auth(self) -> Optional[requests.auth.AuthBase]:
        if self.token_provider is None:
            return None
        if self.token_in_query:
            return QueryTokenAuth(self.token_provider, self.audience)
        return SasAuth(self.token_provider, audience=self.audience)


def _check_connect_args(
    suffix: object, headers: object, subprotocols: object, id: object, timeout: object
) -> None:
    """TypeError naming the argument, so a misplaced one fails here and not deep inside the handshake."""
    if isinstance(suffix, Mapping):
        raise TypeError("connect() takes the path suffix first: connect(suffix, headers={...}), not a mapping")
    _check_suffix(suffix)
    if headers is not None and not isinstance(headers, Mapping):
        raise TypeError(f"headers must be a mapping of names to values, not {type(headers).__name__}")
    for name, value in (headers or {}).items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"headers must map str to str, not {type(name).__name__} to {type(value).__name__}")
    offered = [subprotocols] if isinstance(subprotocols, str) else subprotocols
    if offered is not None and (
        not isinstance(offered, (list, tuple)) or not all(isinstance(item, str) for item in offered)
    ):
        raise TypeError("subprotocols must be a string or a list of strings")
    if id is not None and not isinstance(id, str):
        raise TypeError(f"id must be a string, not {type(id).__name__}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))):
        raise TypeError(f"timeout must be a number of seconds or None, not {type(timeout).__name__}")


def _check_suffix(suffix: object) -> None:
    if not isinstance(suffix, str):
        raise TypeError(f"suffix must be a string path such as '/chat', not {type(suffix).__name__}")


def _split_suffix(suffix: str, query: QueryArg) -> Tuple[str, str]:
    """(path suffix, query text) from a suffix that may end in ``?query``, plus ``query``.

    The application's query is never rewritten (``?flag`` stays ``flag``, ``?a=1;b=2`` stays
    as written); ``query`` given as pairs or a mapping is form-encoded and appended.
    """
    _check_suffix(suffix)
    suffix_path, _, suffix_query = suffix.partition("?")
    parts = [text for text in (addresses.query_text(suffix_query), addresses.query_text(query)) if text]
    return suffix_path, "&".join(parts)


def _negotiated_subprotocol(ws: websocket.WebSocket, offered: Sequence[str]) -> Optional[str]:
    """The subprotocol the listener chose, or None; one that was not offered fails the connection."""
    answer = ((ws.getheaders() or {}).get("sec-websocket-protocol") or "").strip()
    if not answer:
        return None
    for candidate in offered:
        if candidate.strip().lower() == answer.lower():
            return candidate
    try:
        ws.shutdown()
    except Exception:  # noqa: BLE001 - best effort on a socket we are abandoning
        pass
    raise ProtocolError(f"the listener chose the subprotocol {answer!r}, which the sender did not offer")


def _connect_error(exc: HybridConnectionError) -> HybridConnectionError:
    """The relay's error, or the listener's reject, for a refused connect handshake."""
    status = getattr(exc, "status_code", None)
    if status is None:
        return exc  # not a refusal: unreachable, TLS, proxy or timeout
    reason: str = getattr(exc, "reason", "") or ""
    tracking_id: Optional[str] = getattr(exc, "tracking_id", None)
    if status in _RELAY_HANDSHAKE_STATUSES and tracking_id:
        if status == 408:
            return RelayTimeoutError(f"the relay timed out the connect: 408 {reason}")
        return exc
    return ConnectionRejectedError(status, reason, tracking_id)
