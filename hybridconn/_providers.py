"""Token providers: where a listener or client gets the token for each handshake.

A provider answers ``get_token(audience) -> (token, expires_on)``; the listener
renews its control channel's token through it (``renewToken``) before the old
one expires. SAS providers mint per audience; :class:`EntraTokenProvider` asks
an azure-identity credential for the relay's one Entra ID scope.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Dict, Optional, Tuple, Union

from ._entra import RELAY_SCOPE, TokenCredentialLike, fetch_access_token, is_token_credential
from ._redact import redact
from ._sas import Clock, generate_sas_token, parse_sas_token
from .exceptions import AuthenticationError, ConfigurationError, HybridConnectionError

__all__ = [
    "TokenProvider", "SharedAccessKeyTokenProvider", "StaticTokenProvider", "CallableTokenProvider",
    "EntraTokenProvider", "TokenProviderLike", "as_token_provider", "renewal_point",
]

log = logging.getLogger(__name__)


class TokenProvider:
    """Base class: ``get_token(audience) -> (token, expires_on)`` (unix seconds)."""

    def get_token(self, audience: str) -> Tuple[str, float]:  # pragma: no cover - abstract
        """``(token, expires_on)`` for ``audience`` (the hybrid connection's URL); expires_on in unix seconds."""
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
        """When the fixed token expires (unix seconds), read from its ``se=`` field."""
        return float(self._parsed.expiry)

    @property
    def renewable(self) -> bool:
        """False: a fixed token cannot be renewed; a listener stops with an error when it expires."""
        return False

    def get_token(self, audience: str) -> Tuple[str, float]:
        """The fixed token, whatever the audience, and its expiry."""
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


#: Longest wait before asking a credential again when it handed back the token it gave last time.
RECHECK_MAX = 30.0


class EntraTokenProvider(TokenProvider):
    """Microsoft Entra ID access tokens from an azure-identity credential (any ``TokenCredential``).

    ``DefaultAzureCredential``, ``ManagedIdentityCredential``, ``AzureCliCredential``,
    ``ClientSecretCredential``... are asked for ``scope`` (the relay's, as Microsoft's clients
    spell it); the token goes on the wire as it is, like a SAS token. One token serves every
    hybrid connection of every namespace, so the audience is not part of the request.

    A token is kept until its renewal point: 80 % of the lifetime the credential reported
    (``expires_on``), as for SAS tokens. The credential has its own cache and may hand back
    the same token until shortly before it expires (azure-identity refreshes five minutes
    before, or at the token's ``refresh_on``); the provider then asks it again every few
    seconds (at most :data:`RECHECK_MAX`), so the listener renews as soon as a new token exists.

    A failure is an :class:`~hybridconn.exceptions.AuthenticationError` saying which credential
    failed and why (no token, secret or assertion in it), raised ``from`` the credential's error;
    while the current token is still valid it is kept and the failure only logged.
    """

    def __init__(self, credential: TokenCredentialLike, scope: str = RELAY_SCOPE, clock: Clock = time.time) -> None:
        if credential is None or isinstance(credential, TokenProvider) or not is_token_credential(credential):
            raise ConfigurationError(
                "EntraTokenProvider needs an azure-identity credential (with get_token), "
                f"not {type(credential).__name__}"
            )
        if not isinstance(scope, str) or not scope.strip():
            raise ConfigurationError("EntraTokenProvider needs a scope such as " + RELAY_SCOPE)
        self.credential = credential
        self.scope: str = scope.strip()
        self._clock = clock
        self._lock = threading.Lock()
        self._current: Optional[Tuple[str, float]] = None
        self._ask_at = 0.0

    def get_token(self, audience: str) -> Tuple[str, float]:
        now = self._clock()
        with self._lock:
            current = self._current
            if current is not None and now < self._ask_at:
                return current
            try:
                fresh = fetch_access_token(self.credential, self.scope)
            except Exception as exc:  # noqa: BLE001 - a credential may fail in any way
                error = self._failure(exc)
                if current is None or current[1] <= now:
                    if error is exc:
                        raise
                    raise error from exc
                log.warning("%s; the current token is valid for %.0f s more", error, current[1] - now)
                self._ask_at = now + _recheck_delay(current[1], now)
                return current
            if current is not None and fresh[0] == current[0]:
                self._ask_at = now + _recheck_delay(current[1], now)  # the credential's cached token
                return current
            self._current = fresh
            self._ask_at = renewal_point(now, fresh[1])
            return fresh

    def _failure(self, exc: Exception) -> HybridConnectionError:
        if isinstance(exc, HybridConnectionError):
            return exc
        detail = redact(" ".join(str(exc).split()))[:1000] or type(exc).__name__
        message = (
            f"Microsoft Entra ID: {type(self.credential).__name__} could not get a token for {self.scope}: {detail}"
        )
        return AuthenticationError(None, detail, message=message)

    def __repr__(self) -> str:
        return f"EntraTokenProvider({type(self.credential).__name__}, scope={self.scope!r})"


def _recheck_delay(expires_on: float, now: float) -> float:
    return min(RECHECK_MAX, max(1.0, (expires_on - now) / 10))


TokenProviderLike = Union[TokenProvider, TokenCredentialLike, Callable[[str], Tuple[str, float]], None]


def as_token_provider(provider: TokenProviderLike) -> Optional[TokenProvider]:
    """Accept a provider, an azure-identity credential (wrapped in :class:`EntraTokenProvider`),
    a callable, or None (anonymous)."""
    if provider is None or isinstance(provider, TokenProvider):
        return provider
    if is_token_credential(provider):
        return EntraTokenProvider(provider)  # type: ignore[arg-type]  # it has get_token(_info)
    if callable(provider):
        return CallableTokenProvider(provider)
    raise ConfigurationError(
        "token_provider must be a TokenProvider, an azure-identity credential or a callable, "
        f"not {type(provider).__name__}"
    )
