"""The rules of the HTTP reverse proxy (azbridge ``-H``), free of I/O.

- :func:`parse_http_spec`: ``relay:{http|https}/[host][/path]:port`` into an :class:`Upstream`.
- :func:`upstream_target`: the relayed request target minus its leading ``/{relay_name}``, the
  rest (path and query) byte for byte.
- :func:`upstream_request_headers`: the sender's headers minus hop-by-hop ones (RFC 9110 7.6.1,
  and any named in ``Connection``), minus the relay's own authorization header, plus
  ``X-Forwarded-For``/``-Host``/``-Proto``/``-Prefix`` as reverse proxies add them.
- :func:`relay_response_headers`: the upstream's headers minus hop-by-hop ones, with a
  ``Location``/``Content-Location`` that points at the upstream rewritten to the relay's URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from ..exceptions import ConfigurationError

__all__ = [
    "HOP_BY_HOP",
    "Upstream",
    "parse_http_spec",
    "upstream_target",
    "upstream_request_headers",
    "relay_response_headers",
    "rewrite_location",
]

#: Connection-level headers a proxy never forwards (RFC 9110 7.6.1, plus the old Keep-Alive names).
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
    "trailer", "trailers", "transfer-encoding", "upgrade",
})

#: Also never sent upstream: the relay's token (a secret meant for the relay), the Host (the
#: upstream's own is set), the length (set from the body actually sent), 100-continue (as azbridge).
_NOT_UPSTREAM = frozenset({"serviceBusAuthorization".lower(), "host", "content-length", "expect"})

#: Not sent back: the length and framing belong to the relay's leg.
_NOT_BACK = frozenset({"content-length"})


@dataclass(frozen=True)
class Upstream:
    """Where ``-H`` sends requests: ``scheme://host:port`` + ``base_path``.

    :ivar relay: the hybrid connection name.
    :ivar scheme: ``http`` or ``https``.
    :ivar host: the web server's host (default ``localhost``, as azbridge).
    :ivar port: its port.
    :ivar base_path: a path prefix on the web server (``""`` or ``/app``).
    """

    relay: str
    scheme: str
    host: str
    port: int
    base_path: str = ""

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def url(self, target: str) -> str:
        """The upstream URL for a relayed target already stripped of ``/{relay}`` (``/x?y``)."""
        return self.origin + self.base_path + (target if target.startswith("/") or not target else "/" + target)


def parse_http_spec(spec: str) -> Upstream:
    """azbridge's ``-H relay:{http|https}/[host][/path]:port`` (``-H web:http/localhost:8080``)."""
    relay, sep, rest = spec.partition(":")
    where, sep2, port_text = rest.rpartition(":")
    scheme, _, host_path = where.partition("/")
    problem = None
    if not sep or not relay:
        problem = "the hybrid connection name is missing"
    elif not sep2 or not port_text.isdigit() or not 0 < int(port_text) <= 65535:
        problem = f"{port_text!r} is not a TCP port"
    elif scheme.lower() not in ("http", "https"):
        problem = f"the scheme must be http or https, not {scheme!r}"
    if problem:
        raise ConfigurationError(f"-H {spec!r}: {problem} (expected relay:{{http|https}}/[host][/path]:port)")
    host, _, path = host_path.partition("/")
    return Upstream(relay, scheme.lower(), host.strip("[]") or "localhost", int(port_text),
                    ("/" + path.strip("/")) if path.strip("/") else "")


def upstream_target(target: str, relay_path: str) -> str:
    """``target`` (``/hc/a%2Fb?q=1``) minus the segments of ``relay_path``; the rest unchanged.

    The relay routed the request by its leading segments, so as many raw segments as the
    hybrid connection's name has are dropped, whatever their spelling or escaping.
    """
    raw_path, sep, query = target.partition("?")
    segments = raw_path.lstrip("/").split("/")
    drop = len([s for s in relay_path.strip("/").split("/") if s])
    rest = "/".join(segments[drop:]) if len(segments) > drop else ""
    path = "/" + rest
    return path + (sep + query if sep else "")


def _connection_tokens(headers: Mapping[str, str]) -> FrozenSet[str]:
    named = [v for k, v in headers.items() if k.lower() == "connection"]
    return frozenset(t.strip().lower() for value in named for t in str(value).split(",") if t.strip())


def upstream_request_headers(headers: Mapping[str, str], *, remote_address: Optional[str], relay_host: str,
                             proto: str, prefix: str) -> Dict[str, str]:
    """What goes upstream: end-to-end headers plus the ``X-Forwarded-*`` set."""
    dropped = HOP_BY_HOP | _NOT_UPSTREAM | _connection_tokens(headers)
    out: Dict[str, str] = {}
    forwarded_for: List[str] = []
    for name, value in headers.items():
        lower = name.lower()
        if lower == "x-forwarded-for":
            forwarded_for.append(str(value))
        elif lower not in dropped:
            out[name] = str(value)
    if remote_address:
        forwarded_for.append(remote_address)
    if forwarded_for:
        out["X-Forwarded-For"] = ", ".join(forwarded_for)
    out.setdefault("X-Forwarded-Host", relay_host)
    out.setdefault("X-Forwarded-Proto", proto)
    out["X-Forwarded-Prefix"] = prefix
    return out


def rewrite_location(value: str, upstream: Upstream, relay_url: str) -> str:
    """A redirect to the upstream, as the relay's URL (``relay_url`` = ``https://ns/relay``).

    Absolute URLs on the upstream's origin and absolute paths under its base path are rewritten;
    anything else (another site, a relative reference) is left alone.
    """
    relay_path = urlsplit(relay_url).path.rstrip("/")
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        if parts.scheme.lower() != upstream.scheme or not _same_host(parts.netloc, upstream):
            return value
        rest = value[len(parts.scheme) + 3 + len(parts.netloc):]
        prefix = relay_url.rstrip("/")
    elif value.startswith("/") and not value.startswith("//"):
        rest, prefix = value, relay_path
    else:
        return value
    base = upstream.base_path
    if base:
        if not (rest == base or rest.startswith(base + "/") or rest[len(base):len(base) + 1] in ("?", "#")):
            return value
        rest = rest[len(base):]
    return prefix + (rest if rest.startswith("/") or not rest else "/" + rest)


def _same_host(netloc: str, upstream: Upstream) -> bool:
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        host, _, port = hostport[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = hostport.partition(":")
    number = int(port) if port.isdigit() else (443 if upstream.scheme == "https" else 80)
    names = {upstream.host.lower()}
    if upstream.host.lower() in _LOOPBACK:
        names |= _LOOPBACK  # the upstream's own redirects often name it another way
    return host.lower() in names and number == upstream.port


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def relay_response_headers(headers: Iterable[Tuple[str, str]], upstream: Upstream, relay_url: str) -> Dict[str, str]:
    """The upstream's response headers as they go back through the relay.

    Repeated headers are joined with ``,`` (a relayed response carries one value per name),
    except ``Set-Cookie``, whose values may hold commas: those are kept apart by case variants
    of the name, which the relay passes as separate headers.
    """
    items = list(headers)
    dropped = HOP_BY_HOP | _NOT_BACK | _connection_tokens(dict(items))
    out: Dict[str, str] = {}
    cookies = 0
    for name, value in items:
        lower = name.lower()
        if lower in dropped:
            continue
        if lower in ("location", "content-location"):
            value = rewrite_location(value, upstream, relay_url)
        if lower == "set-cookie":
            out[_spelling(name, cookies)] = value
            cookies += 1
            continue
        existing = next((k for k in out if k.lower() == lower), None)
        if existing is None:
            out[name] = value
        else:
            out[existing] = out[existing] + ", " + value
    return out


def _spelling(name: str, n: int) -> str:
    """The ``n``-th distinct case spelling of ``name`` (``Set-Cookie``, ``set-Cookie``, ...)."""
    if n == 0:
        return name
    letters = [i for i, ch in enumerate(name) if ch.isalpha()]
    chars = list(name.lower())
    for bit, at in enumerate(letters):
        if not (n >> bit) & 1:
            chars[at] = chars[at].upper()
    return "".join(chars)
