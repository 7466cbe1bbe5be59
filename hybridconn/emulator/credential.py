"""A credential for tests: an azure-core ``TokenCredential`` minting from the emulator's dev issuer.

Give it wherever an azure-identity credential goes (``credential=`` of
``from_connection_string``, ``token_provider=``) and the emulator admits or refuses
its principal by the role assignments, as Azure would::

    relay = RelayEmulator(role_assignments=[("my-app", "Azure Relay Listener", "hc1")])
    listener = HybridConnectionListener.from_connection_string(
        relay.connection_string("hc1", entra=True), credential=DevCredential("my-app"))
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, List, NamedTuple, Optional, Tuple

from .entra import DEV_ISSUER, DEV_TENANT_ID, mint_token
from .roles import DEV_PRINCIPAL_ID

__all__ = ["DevCredential", "resource_of"]

_DEFAULT = "/.default"


class _AccessToken(NamedTuple):
    """azure-core's ``AccessToken`` shape, for when azure-core is not installed."""

    token: str
    expires_on: int


def resource_of(scope: str) -> str:
    """The resource a scope names: ``https://relay.azure.net//.default`` -> ``https://relay.azure.net/``."""
    return scope[: -len(_DEFAULT)] if scope.endswith(_DEFAULT) else scope


class DevCredential:
    """Mints an Entra ID-style token for ``principal_id`` on each call (no cache), valid ``lifetime`` s.

    The token's ``aud`` is the requested scope's resource, so a credential asked for another
    service's scope yields a token the relay refuses (401), as Entra ID would. ``issuer``,
    ``tenant_id``, ``audience`` and ``signing_key`` override what goes into the token, to make
    ones the emulator refuses (see :func:`~.entra.mint_token`).

    :ivar calls: how many tokens it has minted. :ivar scopes: the scopes of the last request.
    """

    def __init__(
        self,
        principal_id: str = DEV_PRINCIPAL_ID,
        *,
        lifetime: float = 3600,
        issuer: str = DEV_ISSUER,
        tenant_id: str = DEV_TENANT_ID,
        audience: Optional[str] = None,
        signing_key: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.principal_id = principal_id
        self.lifetime: float = float(lifetime)
        self.issuer = issuer
        self.tenant_id = tenant_id
        self.audience = audience
        self._signing_key = signing_key
        self._clock = clock
        self._lock = threading.Lock()
        self.calls: int = 0
        self.scopes: List[str] = []

    def get_token(self, *scopes: str, claims: Optional[str] = None, tenant_id: Optional[str] = None,
                  enable_cae: bool = False, **kwargs: Any) -> Any:
        """A fresh token (azure-core ``AccessToken``) for ``scopes`` (one scope, as Entra ID wants)."""
        token, expires_on = self._mint(scopes)
        return _access_token(token, expires_on)

    def get_token_info(self, *scopes: str, options: Optional[Any] = None) -> Any:
        """The same, as azure-core's ``AccessTokenInfo`` (when azure-core is installed)."""
        token, expires_on = self._mint(scopes)
        try:
            from azure.core.credentials import AccessTokenInfo
        except ImportError:
            return _access_token(token, expires_on)
        return AccessTokenInfo(token, expires_on)

    def _mint(self, scopes: Tuple[str, ...]) -> Tuple[str, int]:
        if len(scopes) != 1 or not isinstance(scopes[0], str) or not scopes[0]:
            raise ValueError("DevCredential needs exactly one scope, such as https://relay.azure.net//.default")
        with self._lock:
            self.calls += 1
            self.scopes = list(scopes)
        audience = self.audience if self.audience is not None else resource_of(scopes[0])
        return mint_token(self.principal_id, lifetime=self.lifetime, audience=audience, issuer=self.issuer,
                          tenant_id=self.tenant_id, signing_key=self._signing_key, now=self._clock())

    def close(self) -> None:
        """Nothing to release (azure-core credentials have ``close``)."""

    def __enter__(self) -> "DevCredential":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DevCredential(principal_id={self.principal_id!r}, lifetime={self.lifetime:g})"


def _access_token(token: str, expires_on: int) -> Any:
    try:
        from azure.core.credentials import AccessToken
    except ImportError:
        return _AccessToken(token, expires_on)
    return AccessToken(token, expires_on)
