"""Pure URL work: building and parsing relay addresses, and hiding secrets in them.

A *namespace* is a host name (``contoso.servicebus.windows.net``, reached
with ``wss://`` and ``https://`` on 443) or a base URL (``ws://127.0.0.1:9350``
or ``wss://...``), which is how tests and the emulator are addressed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from ._redact import redact, redact_url
from .exceptions import ConfigurationError

__all__ = [
    "Namespace",
    "QueryArg",
    "listen_url",
    "connect_url",
    "http_url",
    "reject_url",
    "rendezvous_request_url",
    "rendezvous_address",
    "check_entity_path",
    "HC_PREFIX",
    "token_audience",
    "ParsedAddress",
    "parse_address",
    "split_target",
    "strip_relay_query",
    "query_text",
    "redact_url",
    "redact",
]

HC_PREFIX = "$hc"
RELAY_QUERY_PREFIX = "sb-hc-"

QueryArg = Union[None, str, Mapping[str, str], Sequence[Tuple[str, str]]]

_SECURE = {"wss": True, "https": True, "sb": True, "ws": False, "http": False}


@dataclass(frozen=True)
class Namespace:
    """Where a relay namespace is reached.

    :ivar host: host name or IP (without brackets).
    :ivar port: explicit port, or None for the scheme's default.
    :ivar secure: True for ``wss``/``https``, False for ``ws``/``http``.
    """

    host: str
    port: Optional[int] = None
    secure: bool = True

    @classmethod
    def parse(cls, text: Union[str, "Namespace"], development: bool = False) -> "Namespace":
        """Parse a host name or a base URL.

        With ``development=True`` (a connection string with
        ``UseDevelopmentEmulator=true``) an ``sb://host:port`` endpoint is
        reached over plain ``ws://``/``http://`` at that port.
        """
        if isinstance(text, Namespace):
            return text
        if not isinstance(text, str) or not text.strip():
            raise ConfigurationError("namespace must be a host name or a base URL such as ws://127.0.0.1:9350")
        text = text.strip()
        if "://" not in text:
            text = "sb://" + text
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme not in _SECURE:
            raise ConfigurationError(f"namespace scheme {scheme!r} is not one of sb, ws, wss, http, https")
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigurationError("namespace has an invalid port") from exc
        host = parts.hostname
        if not host:
            raise ConfigurationError("namespace has no host name")
        secure = _SECURE[scheme]
        if development and scheme == "sb":
            secure = False
        if port in (443 if secure else 80,):
            port = None
        return cls(host=host, port=port, secure=secure)

    @property
    def authority(self) -> str:
        """``host[:port]``, with IPv6 hosts in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port is not None else host

    @property
    def ws_base(self) -> str:
        return f"{'wss' if self.secure else 'ws'}://{self.authority}"

    @property
    def http_base(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.authority}"

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else (443 if self.secure else 80)

    def __str__(self) -> str:
        return self.ws_base


def _quote_path(path: str) -> str:
    return quote(path, safe="/-._~!'()*")


def check_entity_path(path: str) -> str:
    """A hybrid connection's name (its entity path) without surrounding slashes.

    :raises ConfigurationError: ``path`` is not a string or names nothing.
    """
    if not isinstance(path, str) or not path.strip("/"):
        raise ConfigurationError("hybrid connection path must be a non-empty string")
    return path.strip("/")


def _suffix_part(suffix: str) -> str:
    if not suffix:
        return ""
    return "/" + _quote_path(suffix.lstrip("/"))


def _hc_url(base: str, path: str, suffix_part: str, query: str) -> str:
    """``{base}/$hc/{path}{suffix}?{query}``: every WebSocket address of the relay has this shape."""
    return f"{base}/{HC_PREFIX}/{_quote_path(path)}{suffix_part}?{query}"


#: Characters a query may hold as written (RFC 3986 ``query`` plus ``%``): a query written with only
#: these is sent byte for byte; any other character (a space, ``"``, ``<``...) is percent-encoded.
_QUERY_SAFE = "!$&'()*+,;=:@/?%-._~"


def query_text(query: QueryArg) -> str:
    """The application's query string as it goes on the wire (no leading ``?``).

    A string is kept as written (``flag``, ``20``, ``a=1;b=2``, ``&&``), only characters a URL
    cannot carry being percent-encoded; a mapping or pairs are form-encoded. ``sb-hc-*=``
    parameters are refused: the relay would strip them.
    """
    if query is None or query == "":
        return ""
    if isinstance(query, str):
        # Kept whole: a query may itself begin with "?" (a URL ending "/x??" sends the query "?").
        text = quote(query, safe=_QUERY_SAFE)
        for item in text.split("&"):
            if _is_relay_item(item):
                raise ConfigurationError(
                    f"query parameter {unquote(item.split('=', 1)[0])!r} is reserved for the relay (sb-hc-*)")
        return text
    return urlencode(_query_pairs(query), quote_via=quote)


def _is_relay_item(item: str) -> bool:
    """``sb-hc-name=value`` (the service strips these; a bare ``sb-hc-name`` it keeps)."""
    return "=" in item and unquote(item.split("=", 1)[0]).lower().startswith(RELAY_QUERY_PREFIX)


def _query_pairs(query: QueryArg) -> List[Tuple[str, str]]:
    if query is None or query == "":
        return []
    if isinstance(query, str):
        pairs = parse_qsl(query.lstrip("?"), keep_blank_values=True)
    elif isinstance(query, Mapping):
        pairs = [(str(k), str(v)) for k, v in query.items()]
    else:
        pairs = [(str(k), str(v)) for k, v in query]
    for name, _ in pairs:
        if name.lower().startswith(RELAY_QUERY_PREFIX):
            raise ConfigurationError(f"query parameter {name!r} is reserved for the relay (sb-hc-*)")
    return pairs


def _relay_url(
    namespace: Union[str, Namespace],
    path: str,
    action: str,
    suffix: str = "",
    query: QueryArg = None,
    id: Optional[str] = None,
    token: Optional[str] = None,
) -> str:
    ns = Namespace.parse(namespace)
    app = query_text(query)
    pairs = [("sb-hc-action", action)]
    if id:
        pairs.append(("sb-hc-id", id))
    if token:
        pairs.append(("sb-hc-token", token))
    # The application's query first, as written; the relay strips exactly the sb-hc-* pairs after it.
    relay = urlencode(pairs, quote_via=quote)
    return _hc_url(ns.ws_base, check_entity_path(path), _suffix_part(suffix), f"{app}&{relay}" if app else relay)


def listen_url(
    namespace: Union[str, Namespace], path: str, id: Optional[str] = None, token: Optional[str] = None
) -> str:
    """The control-channel URL. Pass ``token`` only to put it in the query string."""
    return _relay_url(namespace, path, "listen", id=id, token=token)


def connect_url(
    namespace: Union[str, Namespace],
    path: str,
    suffix: str = "",
    query: QueryArg = None,
    id: Optional[str] = None,
    token: Optional[str] = None,
) -> str:
    """The sender's WebSocket URL, with an optional path suffix and application query."""
    return _relay_url(namespace, path, "connect", suffix=suffix, query=query, id=id, token=token)


def http_url(
    namespace: Union[str, Namespace], path: str, suffix: str = "", query: QueryArg = None
) -> str:
    """The HTTP address of a hybrid connection (no ``$hc``)."""
    ns = Namespace.parse(namespace)
    url = f"{ns.http_base}/{_quote_path(check_entity_path(path))}{_suffix_part(suffix)}"
    text = query_text(query)
    return url + ("?" + text if text else "")


def token_audience(namespace: Union[str, Namespace], path: Optional[str] = None) -> str:
    """The resource URI a token is signed for: ``http://host[:port]/path``."""
    ns = Namespace.parse(namespace)
    base = f"http://{ns.authority}/"
    return base + _quote_path(path.strip("/")) if path else base


def reject_url(address: str, status_code: int, description: str) -> str:
    """The accept address plus ``sb-hc-statusCode`` and ``sb-hc-statusDescription``."""
    separator = "&" if "?" in address else "?"
    extra = urlencode(
        [("sb-hc-statusCode", str(int(status_code))), ("sb-hc-statusDescription", description)], quote_via=quote
    )
    return address + separator + extra


def rendezvous_address(base_url: str, path: str, action: str, id: str, suffix: str = "", query: str = "") -> str:
    """The service side: the rendezvous address it sends in an ``accept`` or ``request`` message.

    ``{base_url}/$hc/{path}{suffix}?{query&}sb-hc-action={action}&sb-hc-id={id}``. The
    application's ``query`` is the sender's raw query string: its ``sb-hc-*``
    parameters are dropped and the rest is kept verbatim. ``suffix`` (``/a/b``
    or empty) is the sender's path after the hybrid connection's name, kept
    as the sender wrote it (only quoted).
    """
    app_query = strip_relay_query(query)
    relay_query = f"sb-hc-action={action}&sb-hc-id={quote(id, safe='')}"
    full_query = f"{app_query}&{relay_query}" if app_query else relay_query
    return _hc_url(base_url, path, _quote_path(suffix), full_query)


def rendezvous_request_url(address: str) -> str:
    """A request's rendezvous address, with ``sb-hc-action=request`` ensured.

    The service's address is meant to be used as-is, so every other parameter
    keeps its exact text and place (re-encoding could change ``+`` or ``%2B``).
    """
    parts = urlsplit(address)
    items = [item for item in parts.query.split("&") if item]
    action = [i for i, item in enumerate(items) if unquote(item.split("=", 1)[0]).lower() == "sb-hc-action"]
    if len(action) == 1 and items[action[0]].split("=", 1)[-1] == "request":
        return address
    items = [item for i, item in enumerate(items) if i not in action]
    items.append("sb-hc-action=request")
    return urlunsplit(parts._replace(query="&".join(items)))


def strip_relay_query(query: str) -> str:
    """Drop every ``sb-hc-*=value`` pair from a raw query string, keeping the rest verbatim.

    As the service does (Microsoft's QueryString test table): empty segments stay
    (``&&&``), a bare ``sb-hc-name`` without ``=`` stays.
    """
    if not query:
        return ""
    return "&".join(item for item in query.split("&") if not _is_relay_item(item))


@dataclass(frozen=True)
class ParsedAddress:
    """An accept or request address taken apart.

    :ivar path: the hybrid connection's name.
    :ivar suffix: the path after it, starting with ``/`` (or empty).
    :ivar query: the application's query string, without any ``sb-hc-*``.
    :ivar relay_query: the ``sb-hc-*`` parameters, decoded.
    """

    scheme: str
    authority: str
    path: str
    suffix: str
    query: str
    relay_query: Tuple[Tuple[str, str], ...]

    def relay_param(self, name: str) -> Optional[str]:
        for key, value in self.relay_query:
            if key == name:
                return value
        return None


def parse_address(address: str, path: Optional[str] = None) -> ParsedAddress:
    """Split a relay address (``.../$hc/{path}[/suffix]?...``) into its parts.

    When ``path`` (the hybrid connection name) is known, everything after it
    is the suffix; otherwise the first path segment is taken as the name.
    """
    parts = urlsplit(address)
    segments = unquote(parts.path).lstrip("/")
    if segments.startswith(HC_PREFIX + "/"):
        segments = segments[len(HC_PREFIX) + 1 :]
    name, suffix = _split_name(segments, path)
    relay = tuple(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower().startswith(RELAY_QUERY_PREFIX)
    )
    return ParsedAddress(
        scheme=parts.scheme,
        authority=parts.netloc,
        path=name,
        suffix=suffix,
        query=strip_relay_query(parts.query),
        relay_query=relay,
    )


def _split_name(segments: str, path: Optional[str]) -> Tuple[str, str]:
    if path:
        name = path.strip("/")
        if segments == name or segments.startswith(name + "/"):
            return name, segments[len(name) :]
    name, _, rest = segments.partition("/")
    return name, ("/" + rest) if rest or segments.endswith("/") else ""


def split_target(target: str, path: Optional[str] = None) -> Tuple[str, str]:
    """Split a request target (``/hc1/suffix?x=1``) into (suffix, query without ``sb-hc-*``)."""
    raw_path, _, query = target.partition("?")
    name, suffix = _split_name(unquote(raw_path).lstrip("/"), path)
    return suffix, strip_relay_query(query)
