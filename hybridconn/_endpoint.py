"""What the listener and the client share: how one is made from a connection string, and how it dials."""

from __future__ import annotations

from typing import Any, Optional, Type, TypeVar, Union

from ._connection_string import ConnectionString, connection_settings
from .exceptions import ConfigurationError
from ._transport import Dialer, Verify

__all__ = ["RelayEndpoint"]

_E = TypeVar("_E", bound="RelayEndpoint")


class RelayEndpoint:
    """A listener or a client of one hybrid connection (a base class; not used on its own).

    :ivar dialer: how it reaches the relay (TLS, proxy, timeouts, where the token goes), fixed at
        construction.
    """

    dialer: Dialer
    #: Whether ``from_connection_string(cs, token_provider=None)`` may make one that sends no token
    #: (a sender, to a hybrid connection that requires no client authorization). A listener always needs one.
    anonymous_allowed: bool = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # pragma: no cover - every subclass has its own
        raise TypeError("RelayEndpoint is a base class: use HybridConnectionListener or HybridConnectionClient")

    @classmethod
    def from_connection_string(cls: Type[_E], connection_string: Union[str, ConnectionString],
                               path: Optional[str] = None, token_ttl: float = 3600, **options: Any) -> _E:
        """Build one from ``Endpoint=sb://...;SharedAccessKeyName=...;SharedAccessKey=...[;EntityPath=...]``.

        ``path`` names the hybrid connection when the connection string has no EntityPath (they
        must agree when both are given). A SharedAccessKey gives a provider minting tokens valid
        ``token_ttl`` seconds; ``token_provider=`` in ``options`` replaces it, and so does
        ``credential=`` (an azure-identity credential: Microsoft Entra ID, for a connection string
        without key fields; ``Authentication=Managed Identity`` needs none). Other ``options``
        go to the constructor.

        :raises ConfigurationError: the connection string is malformed, or it has no credentials
            (no key, signature or ``Authentication=``) and neither ``credential=`` nor
            ``token_provider=`` is given: the relay would answer every unsigned call with 401.
        """
        anonymous = cls.anonymous_allowed and "token_provider" in options and options["token_provider"] is None
        namespace, entity, provider = connection_settings(connection_string, path, token_ttl, options)
        if provider is None and not anonymous:
            raise ConfigurationError(missing_credentials(cls.anonymous_allowed))
        return cls(namespace, entity, provider, **options)

    @property
    def verify(self) -> Verify:
        """TLS verification: True, False, or the path of a CA bundle."""
        return self.dialer.verify

    @property
    def proxy(self) -> Optional[str]:
        """The explicit proxy, or None (the environment's proxy settings apply)."""
        return self.dialer.proxy

    @property
    def token_in_query(self) -> bool:
        """True when the token goes in the ``sb-hc-token`` query parameter instead of a header."""
        return self.dialer.token_in_query


#: The start of the missing-credentials message (the CLI adds its own options after it).
NO_CREDENTIALS = "the connection string has no SharedAccessKeyName and SharedAccessKey (nor SharedAccessSignature)"


def missing_credentials(anonymous_allowed: bool) -> str:
    """Why a connection string without credentials is refused locally, and the ways to give some."""
    text = (
        f"{NO_CREDENTIALS}: add a shared access policy's, add Authentication=Managed Identity, "
        "or pass credential= (Microsoft Entra ID)"
    )
    if anonymous_allowed:
        text += "; token_provider=None sends no token, for a hybrid connection that requires no client authorization"
    return text
