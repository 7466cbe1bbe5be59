"""Connection strings, Shared Access Signature tokens and token providers.

Tokens are minted exactly as Microsoft's clients mint them, byte for byte::

    sr  = encodeURIComponent(resource)
    sig = base64(HMAC-SHA256(key as UTF-8, sr + "\\n" + se))
    SharedAccessSignature sr=<sr>&sig=<encodeURIComponent(sig)>&se=<se>&skn=<key name>

The key is used as given (its UTF-8 bytes), not base64-decoded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union
from urllib.parse import quote, unquote, urlsplit

import requests

from .addresses import Namespace
from .exceptions import AuthenticationError, ConfigurationError

__all__ = [
    "ConnectionString",
    "SasToken",
    "generate_sas_token",
    "parse_sas_token",
    "verify_sas_token",
    "normalize_audience",
    "TokenProvider",
    "SharedAccessKeyTokenProvider",
    "StaticTokenProvider",
    "CallableTokenProvider",
    "as_token_provider",
    "SasAuth",
    "AUTH_HEADER",
    "renewal_point",
    "connection_settings",
]

log = logging.getLogger(__name__)

#: The header Microsoft's clients put the token in, and that we use by default.
AUTH_HEADER = "ServiceBusAuthorization"
SAS_PREFIX = "SharedAccessSignature "

Clock = Callable[[], float]


def _uri_component(text: str) -> str:
    """JavaScript's encodeURIComponent."""
    return quote(text, safe="-_.!~*'()")


# --------------------------------------------------------------------------------------
# Connection strings

_CS_KEYS = {
    "endpoint": "endpoint",
    "sharedaccesskeyname": "shared_access_key_name",
    "sharedaccesskey": "shared_access_key",
    "sharedaccesssignature": "shared_access_signature",
    "entitypath": "entity_path",
    "usedevelopmentemulator": "use_development_emulator",
}
_CS_SECRETS = ("shared_access_key", "shared_access_signature")
_CS_WIRE = {
    "endpoint": "Endpoint",
    "shared_access_key_name": "SharedAccessKeyName",
    "shared_access_key": "SharedAccessKey",
    "shared_access_signature": "SharedAccessSignature",
    "entity_path": "EntityPath",
}


@dataclass(frozen=True)
class ConnectionString:
    """An Azure Relay connection string.

    ``Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=..;SharedAccessKey=..[;EntityPath=..]``,
    keys case-insensitive. ``UseDevelopmentEmulator=true`` (the Azure emulators'
    convention) means plain ``ws://``/``http://`` to the endpoint's host and port.
    The repr and error messages never show the key or signature.
    """

    endpoint: str
    shared_access_key_name: Optional[str] = None
    shared_access_key: Optional[str] = field(default=None, repr=False)
    shared_access_signature: Optional[str] = field(default=None, repr=False)
    entity_path: Optional[str] = None
    use_development_emulator: bool = False

    @classmethod
    def parse(cls, text: str) -> "ConnectionString":
        if not isinstance(text, str) or not text.strip():
            raise ConfigurationError("connection string is empty")
        values: Dict[str, object] = {}
        previous: Optional[str] = None
        for index, part in enumerate(p for p in text.strip().split(";") if p.strip()):
            name, sep, value = part.partition("=")
            attr = _CS_KEYS.get(name.strip().lower())
            if not sep or attr is None:
                # Right after a key or signature, a "name" may be the tail of a secret that held a ';'.
                shown = f"part {index + 1}"
                if sep and previous not in _CS_SECRETS:
                    shown += f" ({name.strip()[:40]!r})"
                raise ConfigurationError(f"connection string has an unknown or malformed part: {shown}")
            previous = attr
            value = value.strip()
            if attr == "use_development_emulator":
                if value.lower() not in ("true", "false"):
                    raise ConfigurationError("UseDevelopmentEmulator must be true or false")
                values[attr] = value.lower() == "true"
            else:
                values[attr] = value
        if not values.get("endpoint"):
            raise ConfigurationError("connection string has no Endpoint")
        key, sas, name = (values.get(a) for a in ("shared_access_key", "shared_access_signature", "shared_access_key_name"))
        if key and sas:
            raise ConfigurationError("connection string has both SharedAccessKey and SharedAccessSignature")
        if key and not name:
            raise ConfigurationError("connection string has SharedAccessKey but no SharedAccessKeyName")
        result = cls(**values)  # type: ignore[arg-type]
        _ = result.namespace  # validate the endpoint now, not on first use
        return result

    @classmethod
    def coerce(cls, value: Union[str, "ConnectionString"]) -> "ConnectionString":
        """A parsed connection string as is; text parsed."""
        return value if isinstance(value, ConnectionString) else cls.parse(value)

    @property
    def namespace(self) -> Namespace:
        """Where the endpoint is reached."""
        return Namespace.parse(self.endpoint, development=self.use_development_emulator)

    def token_provider(self, ttl: float = 3600) -> Optional["TokenProvider"]:
        """The provider this connection string implies, or None for anonymous access."""
        if self.shared_access_signature:
            return StaticTokenProvider(self.shared_access_signature)
        if self.shared_access_key_name and self.shared_access_key:
            return SharedAccessKeyTokenProvider(self.shared_access_key_name, self.shared_access_key, ttl=ttl)
        return None

    def resolve_path(self, path: Optional[str]) -> str:
        """The hybrid connection path: ``path`` or EntityPath (they must agree if both given)."""
        if path and self.entity_path and path.strip("/") != self.entity_path.strip("/"):
            raise ConfigurationError(
                f"path {path!r} differs from the connection string's EntityPath {self.entity_path!r}"
            )
        chosen = path or self.entity_path
        if not chosen:
            raise ConfigurationError("no hybrid connection path: pass path= or add EntityPath to the connection string")
        return chosen.strip("/")

    def to_connection_string(self, redact_secrets: bool = False) -> str:
        """The connection string as text that :meth:`parse` reads back (secrets included by default)."""
        parts = []
        for attr, wire in _CS_WIRE.items():
            value = getattr(self, attr)
            if value:
                parts.append(f"{wire}={'<redacted>' if redact_secrets and attr in _CS_SECRETS else value}")
        if self.use_development_emulator:
            parts.append("UseDevelopmentEmulator=true")
        return ";".join(parts)

    def __str__(self) -> str:
        # str() ends up in logs and f-strings: never the key. to_connection_string() has it.
        return self.to_connection_string(redact_secrets=True)


def connection_settings(
    connection_string: Union[str, ConnectionString], path: Optional[str], token_ttl: float, options: Dict[str, Any]
) -> Tuple[Namespace, str, Optional["TokenProvider"]]:
    """(namespace, hybrid connection, token provider) for a ``from_connection_string`` constructor.

    ``token_provider=`` in ``options`` (taken out of it) replaces the provider the
    connection string implies (a SharedAccessKey mints tokens valid ``token_ttl`` seconds).
    """
    cs = ConnectionString.coerce(connection_string)
    provider = options.pop("token_provider", None) or cs.token_provider(ttl=token_ttl)
    return cs.namespace, cs.resolve_path(path), provider


# --------------------------------------------------------------------------------------
# SAS tokens


@dataclass(frozen=True)
class SasToken:
    """A parsed SAS token. ``resource`` is the ``sr`` value as written (still encoded)."""

    resource: str
    signature: str = field(repr=False)
    expiry: int
    key_name: str
    raw: str = field(repr=False)

    @property
    def audience(self) -> str:
        """The decoded resource URI."""
        return unquote(self.resource)


def generate_sas_token(
    resource: str, key_name: str, key: str, ttl: float = 3600, clock: Clock = time.time
) -> str:
    """Mint a SAS token for ``resource``, valid for ``ttl`` seconds from ``clock()``."""
    if not key_name or not key:
        raise ConfigurationError("a SAS token needs a key name and a key")
    expiry = int(clock() + ttl)
    encoded = _uri_component(resource)
    signature = _sign(key, encoded, expiry)
    return f"{SAS_PREFIX}sr={encoded}&sig={_uri_component(signature)}&se={expiry}&skn={key_name}"


def _sign(key: str, encoded_resource: str, expiry: Union[int, str]) -> str:
    digest = hmac.new(key.encode("utf-8"), f"{encoded_resource}\n{expiry}".encode("utf-8"), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("ascii")


def parse_sas_token(token: str) -> SasToken:
    """Parse ``SharedAccessSignature sr=..&sig=..&se=..&skn=..`` (fields in any order)."""
    if not isinstance(token, str):
        raise AuthenticationError(401, "token is not a string")
    fields = _token_fields(token)
    missing = [name for name in ("sr", "sig", "se", "skn") if not fields.get(name)]
    if missing:
        raise AuthenticationError(401, f"malformed token: missing {', '.join(missing)}")
    try:
        expiry = int(unquote(fields["se"]))
    except ValueError:
        raise AuthenticationError(401, "malformed token: se is not a number") from None
    return SasToken(
        resource=fields["sr"], signature=unquote(fields["sig"]), expiry=expiry, key_name=unquote(fields["skn"]), raw=token
    )


def _token_fields(token: str) -> Dict[str, str]:
    """The ``name=value`` fields of a token, names lower-cased, values as written."""
    text = token.strip()
    if text[: len(SAS_PREFIX)].lower() == SAS_PREFIX.lower():
        text = text[len(SAS_PREFIX) :].strip()
    fields: Dict[str, str] = {}
    for part in text.split("&"):
        name, sep, value = part.partition("=")
        if sep:
            fields[name.strip().lower()] = value
    return fields


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "sb": None}


def normalize_audience(uri: str) -> Tuple[str, str]:
    """(host[:port], path) of an audience, with scheme, default port, case and slashes normalised.

    ``http://ns/hc1``, ``http://ns:443/hc1``, ``sb://ns/hc1`` and
    ``wss://NS/$hc/hc1/`` all become ``("ns", "/hc1")``.
    """
    uri = uri.strip()
    if "://" not in uri:
        uri = unquote(uri)  # an sr value as written in a token: encodeURIComponent of the URI
    parts = urlsplit(uri)
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError("audience is not an absolute http, https, sb, ws or wss URI")
    host = parts.hostname.lower()
    try:
        port = parts.port
    except ValueError:
        raise ValueError("audience has an invalid port") from None
    # Microsoft's clients keep :443 on http:// audiences; both default ports mean "the namespace".
    if port is not None and port not in (80, 443):
        host = f"{host}:{port}"
    # Segments compared decoded, so "my%20hc" in a URI and "my hc" in a decoded sr agree.
    raw = [s for s in parts.path.split("/") if s]
    # Only a literal "$hc" is the WebSocket prefix; an encoded "%24hc" is part of a name.
    if raw and raw[0].lower() == "$hc":
        raw = raw[1:]
    segments = [unquote(s) for s in raw]
    return host, "/" + "/".join(segments)


def _audience_covers(token_audience: str, wanted: str) -> bool:
    try:
        token_host, token_path = normalize_audience(token_audience)
        want_host, want_path = normalize_audience(wanted)
    except ValueError:
        return False
    if token_host != want_host:
        return False
    token_path = token_path.rstrip("/").lower()
    want_path = want_path.rstrip("/").lower()
    return token_path == "" or want_path == token_path or want_path.startswith(token_path + "/")


def verify_sas_token(
    token: str,
    keys: Mapping[str, str],
    audience: str,
    now: Optional[float] = None,
) -> SasToken:
    """Check a token the way the service does: signature, then expiry, then audience.

    :param keys: key name -> key, the namespace's (or entity's) rules.
    :param audience: the resource being accessed, e.g. ``http://host:port/hc1``.
    :raises AuthenticationError: malformed, unknown key name, bad signature, expired,
        or an audience the token does not cover (all 401, as the service answers).
    """
    parsed = parse_sas_token(token)
    key = keys.get(parsed.key_name)
    if key is None:
        raise AuthenticationError(401, "unknown SharedAccessKeyName")
    # The signature covers sr and se exactly as written in the token (sr still encoded).
    expected = _sign(key, parsed.resource, _token_fields(token)["se"])
    if not hmac.compare_digest(expected.encode("ascii"), parsed.signature.encode("utf-8", "replace")):
        raise AuthenticationError(401, "invalid signature")
    if parsed.expiry <= (time.time() if now is None else now):
        raise AuthenticationError(401, "token has expired")
    if not _audience_covers(parsed.resource, audience):
        raise AuthenticationError(401, "token audience does not match the resource")
    return parsed


# --------------------------------------------------------------------------------------
# Token providers


class TokenProvider:
    """Base class: ``get_token(audience) -> (token, expires_on)`` (unix seconds)."""

    def get_token(self, audience: str) -> Tuple[str, float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, audience: str) -> Tuple[str, float]:
        return self.get_token(audience)

    @property
    def renewable(self) -> bool:
        """False when every call returns the same token (it cannot be renewed)."""
        return True


class SharedAccessKeyTokenProvider(TokenProvider):
    """Mints tokens from a key; each token is cached until its renewal point (80 % of its life,
    at least 30 s before expiry, never before half its life)."""

    def __init__(self, key_name: str, key: str, ttl: float = 3600, clock: Clock = time.time) -> None:
        if not key_name or not key:
            raise ConfigurationError("SharedAccessKeyTokenProvider needs a key name and a key")
        if ttl <= 0:
            raise ConfigurationError("token ttl must be positive")
        self.key_name = key_name
        self._key = key
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: Dict[str, Tuple[str, float, float]] = {}

    def get_token(self, audience: str) -> Tuple[str, float]:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(audience)
            if cached is not None and now < cached[2]:
                return cached[0], cached[1]
            token = generate_sas_token(audience, self.key_name, self._key, self.ttl, clock=lambda: now)
            expires_on = float(int(now + self.ttl))
            self._cache[audience] = (token, expires_on, renewal_point(now, expires_on))
            return token, expires_on

    def __repr__(self) -> str:
        return f"SharedAccessKeyTokenProvider(key_name={self.key_name!r}, ttl={self.ttl})"


def renewal_point(obtained_at: float, expires_on: float) -> float:
    """80 % of a token's life, or 30 s before expiry if earlier, but not before half its life.

    Short-lived tokens (seconds) would otherwise be handed out until moments before expiry.
    """
    life = max(0.0, expires_on - obtained_at)
    return max(min(obtained_at + 0.8 * life, expires_on - 30.0), obtained_at + 0.5 * life)


class StaticTokenProvider(TokenProvider):
    """A pre-issued token, used as is; its expiry is read from ``se``."""

    def __init__(self, token: str) -> None:
        try:
            self._parsed = parse_sas_token(token)
        except AuthenticationError as exc:
            raise ConfigurationError(f"invalid SharedAccessSignature: {exc.reason}") from None
        self._token = token.strip()

    @property
    def expires_on(self) -> float:
        return float(self._parsed.expiry)

    @property
    def renewable(self) -> bool:
        return False

    def get_token(self, audience: str) -> Tuple[str, float]:
        return self._token, self.expires_on

    def __repr__(self) -> str:
        return f"StaticTokenProvider(key_name={self._parsed.key_name!r}, expires_on={self._parsed.expiry})"


class CallableTokenProvider(TokenProvider):
    """Wraps any callable ``audience -> (token, expires_on)``."""

    def __init__(self, func: Callable[[str], Tuple[str, float]]) -> None:
        self._func = func

    def get_token(self, audience: str) -> Tuple[str, float]:
        token, expires_on = self._func(audience)
        return token, float(expires_on)

    def __repr__(self) -> str:
        return f"CallableTokenProvider({getattr(self._func, '__name__', 'callable')})"


TokenProviderLike = Union[TokenProvider, Callable[[str], Tuple[str, float]], None]


def as_token_provider(provider: TokenProviderLike) -> Optional[TokenProvider]:
    """Accept a provider, a callable, or None (anonymous)."""
    if provider is None or isinstance(provider, TokenProvider):
        return provider
    if callable(provider):
        return CallableTokenProvider(provider)
    raise ConfigurationError(f"token_provider must be a TokenProvider or a callable, not {type(provider).__name__}")


class SasAuth(requests.auth.AuthBase):
    """``requests`` auth that signs each request's ``ServiceBusAuthorization`` header.

    The audience is the request URL without its query; the provider's cache
    means a token is minted only when the previous one reaches its renewal point.
    """

    def __init__(self, provider: TokenProviderLike, audience: Optional[str] = None) -> None:
        resolved = as_token_provider(provider)
        if resolved is None:
            raise ConfigurationError("SasAuth needs a token provider")
        self.provider = resolved
        self.audience = audience

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        audience = self.audience or _http_audience(request.url or "")
        token, _ = self.provider.get_token(audience)
        request.headers[AUTH_HEADER] = token
        return request

    def __repr__(self) -> str:
        return f"SasAuth({self.provider!r})"


def _http_audience(url: str) -> str:
    parts = urlsplit(url)
    return f"http://{parts.netloc}{parts.path}"
