"""Token providers: where a listener or client gets the token for each handshake.

A provider answers ``get_token(audience) -> (token, expires_on)``; the listener
renews its control channel's token through it (``renewToken``) before the old
one expires.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Dict, Optional, Tuple, Union

from ._sas import Clock, generate_sas_token, parse_sas_token
from .exceptions import AuthenticationError, ConfigurationError

__all__ = [
    "TokenProvider", "SharedAccessKeyTokenProvider", "StaticTokenProvider", "CallableTokenProvider",
    "TokenProviderLike", "as_token_provider", "renewal_point",
]


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
