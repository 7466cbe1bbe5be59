"""Shared Access Signature tokens: minting, parsing and verifying them, as the service does.

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
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Mapping, Optional, Tuple, Union
from urllib.parse import quote, unquote, urlsplit

from .addresses import HC_PREFIX
from .exceptions import AuthenticationError, ConfigurationError

__all__ = [
    "SAS_PREFIX", "Clock", "SasToken", "generate_sas_token", "parse_sas_token", "verify_sas_token",
    "normalize_audience",
]

SAS_PREFIX = "SharedAccessSignature "
Clock = Callable[[], float]


def _uri_component(text: str) -> str:
    """JavaScript's encodeURIComponent."""
    return quote(text, safe="-_.!~*'()")


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
    digest = hmac.new(key.encode("utf-8"), f"{encoded_resource}\n{expiry}".encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("ascii")


def parse_sas_token(token: str) -> SasToken:
    """Parse ``SharedAccessSignature sr=..&sig=..&se=..&skn=..`` (fields in any order)."""
    if not isinstance(token, str):
        raise AuthenticationError(401, "token is not a string")
    fields = _token_fields(token)
    missing = [name for name in ("sr", "sig", "se", "skn") if not fields.get(name)]
    if missing:
        raise AuthenticationError(401, f"malformed token: missing {', '.join(missing)}")
    expiry = _expiry(unquote(fields["se"]))
    return SasToken(
        resource=fields["sr"],
        signature=unquote(fields["sig"]),
        expiry=expiry,
        key_name=unquote(fields["skn"]),
        raw=token,
    )


#: The longest ``se`` taken: 19 digits fit a signed 64-bit integer (the year 2^63 s away).
_MAX_EXPIRY_DIGITS = 19


def _expiry(text: str) -> int:
    """``se`` as Unix seconds: ASCII digits only (no sign, ``_``, exponent, other scripts' digits),
    at most 19 of them, so that every later use (a float, a timer) is safe; else a 401."""
    if not (0 < len(text) <= _MAX_EXPIRY_DIGITS and text.isascii() and text.isdigit()):
        raise AuthenticationError(401, "malformed token: se is not a number (at most 19 ASCII digits)")
    return int(text)


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
    if raw and raw[0].lower() == HC_PREFIX:
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
